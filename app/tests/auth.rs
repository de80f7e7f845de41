#![allow(clippy::unwrap_used)]
//! Storefront security against a real database file in a temporary folder: the seeded users'
//! passwords, sessions, API tokens (only their hashes stored), and the payment callbacks'
//! signatures and secret file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tempfile::TempDir;
use zeroapp_app::db::auth::{self, API_TOKEN_PREFIX, ApiToken};
use zeroapp_app::db::{Db, DbError};
use zeroapp_app::payment_signature::{self, SECRET_FILE, SECRET_LEN};

const NOW: i64 = 1_700_000_000_000;
const HOUR_MS: i64 = 60 * 60 * 1000;

async fn fresh() -> (TempDir, PathBuf, Db) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.sqlite");
    let db = Db::open(&path).await.unwrap();
    (dir, path, db)
}

/// Every value of every row of `table`, as text, read behind the layer's back.
fn table_text(path: &Path, table: &str) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut statement = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
    let columns = statement.column_count();
    let mut rows = statement.query([]).unwrap();
    let mut values = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        for column in 0..columns {
            let value: rusqlite::types::Value = row.get(column).unwrap();
            values.push(format!("{value:?}"));
        }
    }
    values
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test]
async fn seeded_users_log_in_with_their_demo_passwords_only() {
    let (_dir, _path, db) = fresh().await;
    db.call(|conn| {
        for (id, admin) in [
            ("alice", false),
            ("bob", false),
            ("carol", false),
            ("admin", true),
        ] {
            let user = auth::verify_password(conn, id, &format!("{id}-password"))?;
            let user = user.unwrap_or_else(|| panic!("{id} logs in with the demo password"));
            assert_eq!((user.id.as_str(), user.is_admin), (id, admin));

            for wrong in ["", "password", "Alice-password", &format!("{id}-password ")] {
                assert_eq!(
                    auth::verify_password(conn, id, wrong)?,
                    None,
                    "{id} / {wrong:?}"
                );
            }
        }
        // Another user's password is a wrong password.
        assert_eq!(auth::verify_password(conn, "alice", "bob-password")?, None);
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_phc_strings() {
    let (_dir, path, _db) = fresh().await;
    let conn = Connection::open(&path).unwrap();
    let mut statement = conn
        .prepare("SELECT id, password_hash FROM users ORDER BY id")
        .unwrap();
    let hashes: Vec<(String, String)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(hashes.len(), 4);
    for (id, hash) in hashes {
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{id}: {hash}"
        );
        assert!(
            !hash.contains("password"),
            "{id}'s password is not in the clear"
        );
    }
}

#[tokio::test]
async fn unknown_users_and_users_without_a_password_cannot_log_in_and_take_as_long() {
    let (_dir, _path, db) = fresh().await;
    db.call(|conn| {
        assert_eq!(
            auth::verify_password(conn, "mallory", "mallory-password")?,
            None
        );
        assert_eq!(auth::verify_password(conn, "", "")?, None);

        // Three tries each, keeping the fastest, against the noise of a busy machine.
        let fastest = |user: &str| {
            (0..3)
                .map(|_| {
                    let start = Instant::now();
                    let _ = auth::verify_password(conn, user, "wrong-password");
                    start.elapsed()
                })
                .min()
                .unwrap()
        };
        let known = fastest("alice");
        let unknown = fastest("mallory");
        // Without the dummy verification an unknown user would answer a thousand times faster
        // (microseconds against an argon2 hash); a margin of 50 leaves room for a busy machine.
        assert!(
            unknown * 50 > known,
            "unknown user {unknown:?}, known user {known:?}"
        );

        conn.execute(
            "UPDATE users SET password_hash = NULL WHERE id = 'carol'",
            [],
        )?;
        assert_eq!(
            auth::verify_password(conn, "carol", "carol-password")?,
            None
        );
        assert_eq!(auth::verify_password(conn, "carol", "")?, None);
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_malformed_stored_hash_is_an_error_not_a_login() {
    let (_dir, _path, db) = fresh().await;
    let error = db
        .call(|conn| {
            conn.execute(
                "UPDATE users SET password_hash = 'bob-password' WHERE id = 'bob'",
                [],
            )?;
            auth::verify_password(conn, "bob", "bob-password")
        })
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::Invalid(_)), "{error}");
}

#[tokio::test]
async fn set_password_replaces_the_password_and_ends_the_users_sessions() {
    let (_dir, path, db) = fresh().await;
    let (alice_session, bob_session) = db
        .call(|conn| {
            let alice = auth::create_session(conn, "alice", HOUR_MS, NOW)?;
            let bob = auth::create_session(conn, "bob", HOUR_MS, NOW)?;
            let ended = auth::set_password(conn, "alice", "correct horse battery staple")?;
            assert_eq!(ended, 1);
            Ok((alice, bob))
        })
        .await
        .unwrap();
    db.call(move |conn| {
        assert_eq!(
            auth::verify_password(conn, "alice", "alice-password")?,
            None
        );
        let alice = auth::verify_password(conn, "alice", "correct horse battery staple")?;
        assert_eq!(alice.unwrap().id, "alice");
        assert_eq!(auth::session_user(conn, &alice_session.token, NOW)?, None);
        assert!(auth::session_user(conn, &bob_session.token, NOW)?.is_some());

        assert!(matches!(
            auth::set_password(conn, "alice", ""),
            Err(DbError::Invalid(_))
        ));
        assert_eq!(
            auth::set_password(conn, "mallory", "x"),
            Err(DbError::not_found("user", "mallory"))
        );
        // Neither refusal changed anything.
        assert!(auth::verify_password(conn, "alice", "correct horse battery staple")?.is_some());
        Ok(())
    })
    .await
    .unwrap();
    let users = table_text(&path, "users");
    assert!(!users.iter().any(|v| v.contains("correct horse")));
}

#[tokio::test]
async fn sessions_are_created_looked_up_expired_and_deleted() {
    let (_dir, _path, db) = fresh().await;
    db.call(|conn| {
        let session = auth::create_session(conn, "admin", HOUR_MS, NOW)?;
        assert!(is_lower_hex(&session.token, 64), "{}", session.token);
        assert!(is_lower_hex(&session.csrf_token, 64));
        assert_ne!(session.token, session.csrf_token);
        assert_eq!(session.expires_at_ms, NOW + HOUR_MS);

        let found = auth::session_user(conn, &session.token, NOW)?.unwrap();
        assert_eq!(found.user.id, "admin");
        assert!(found.user.is_admin);
        assert_eq!(found.csrf_token, session.csrf_token);
        assert_eq!(found.expires_at_ms, NOW + HOUR_MS);

        // Valid until the last millisecond before its expiry, not at it.
        let last = NOW + HOUR_MS - 1;
        assert!(auth::session_user(conn, &session.token, last)?.is_some());
        assert_eq!(
            auth::session_user(conn, &session.token, NOW + HOUR_MS)?,
            None
        );
        assert_eq!(
            auth::session_user(conn, &session.token, NOW + 2 * HOUR_MS)?,
            None
        );

        // Unknown, altered or empty tokens find nothing.
        let mut altered = session.token.clone();
        altered.replace_range(..1, if altered.starts_with('0') { "1" } else { "0" });
        for token in [
            altered.as_str(),
            "",
            &session.csrf_token,
            &session.token[..63],
        ] {
            assert_eq!(auth::session_user(conn, token, NOW)?, None, "{token:?}");
        }

        // Two sessions of one user are independent; deleting one leaves the other.
        let other = auth::create_session(conn, "admin", HOUR_MS, NOW)?;
        assert_ne!(other.token, session.token);
        assert!(auth::delete_session(conn, &session.token)?);
        assert!(!auth::delete_session(conn, &session.token)?, "deleted once");
        assert_eq!(auth::session_user(conn, &session.token, NOW)?, None);
        assert!(auth::session_user(conn, &other.token, NOW)?.is_some());
        assert_eq!(auth::delete_user_sessions(conn, "admin")?, 1);
        assert_eq!(auth::session_user(conn, &other.token, NOW)?, None);
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn expired_sessions_are_purged_and_bad_sessions_refused() {
    let (_dir, _path, db) = fresh().await;
    db.call(|conn| {
        let short = auth::create_session(conn, "alice", HOUR_MS, NOW)?;
        let long = auth::create_session(conn, "bob", 3 * HOUR_MS, NOW)?;
        assert_eq!(auth::active_sessions(conn, NOW)?, 2);
        assert_eq!(auth::purge_expired(conn, NOW + HOUR_MS - 1)?, 0);
        assert_eq!(auth::active_sessions(conn, NOW + HOUR_MS)?, 1);
        assert_eq!(auth::purge_expired(conn, NOW + HOUR_MS)?, 1);
        assert_eq!(auth::purge_expired(conn, NOW + HOUR_MS)?, 0);
        assert!(!auth::delete_session(conn, &short.token)?, "purged already");
        assert!(auth::session_user(conn, &long.token, NOW + HOUR_MS)?.is_some());

        assert_eq!(
            auth::create_session(conn, "mallory", HOUR_MS, NOW),
            Err(DbError::not_found("user", "mallory"))
        );
        for ttl in [0, -1, i64::MAX] {
            assert!(
                matches!(
                    auth::create_session(conn, "alice", ttl, NOW),
                    Err(DbError::Invalid(_))
                ),
                "ttl {ttl}"
            );
        }
        assert_eq!(auth::active_sessions(conn, NOW)?, 1);
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn only_hashes_of_session_tokens_are_stored() {
    let (_dir, path, db) = fresh().await;
    let session = db
        .call(|conn| auth::create_session(conn, "carol", HOUR_MS, NOW))
        .await
        .unwrap();
    drop(db);

    let stored = table_text(&path, "sessions");
    assert!(!stored.is_empty());
    assert!(
        !stored.iter().any(|v| v.contains(&session.token)),
        "the token is not in the table: {stored:?}"
    );
    let conn = Connection::open(&path).unwrap();
    let hash: String = conn
        .query_row("SELECT token_hash FROM sessions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(hash, auth::token_hash(&session.token));
    assert!(is_lower_hex(&hash, 64));
    // SHA-256 of "abc" (FIPS 180-2), so the digest is the standard one.
    assert_eq!(
        auth::token_hash("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Nor is the token anywhere in the file (or its write-ahead log).
    for file in ["app.sqlite", "app.sqlite-wal"] {
        let bytes = std::fs::read(path.with_file_name(file)).unwrap_or_default();
        let needle = session.token.as_bytes();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{file}");
    }
}

#[tokio::test]
async fn api_tokens_are_created_looked_up_listed_and_revoked() {
    let (_dir, path, db) = fresh().await;
    let (ci, laptop, bobs) = db
        .call(|conn| {
            let ci = auth::create_api_token(conn, "alice", "ci", NOW)?;
            let laptop = auth::create_api_token(conn, "alice", "laptop", NOW + 1)?;
            let bobs = auth::create_api_token(conn, "bob", "ci", NOW + 2)?;
            Ok((ci, laptop, bobs))
        })
        .await
        .unwrap();
    for token in [&ci, &laptop, &bobs] {
        let hex = token.strip_prefix(API_TOKEN_PREFIX).unwrap();
        assert!(is_lower_hex(hex, 64), "{token}");
    }
    assert_ne!(ci, laptop);

    let stored = table_text(&path, "api_tokens");
    for token in [&ci, &laptop, &bobs] {
        assert!(!stored.iter().any(|v| v.contains(token.as_str())));
        assert!(stored.iter().any(|v| v.contains(&auth::token_hash(token))));
    }

    db.call(move |conn| {
        assert_eq!(auth::api_token_user(conn, &ci)?.unwrap().id, "alice");
        assert_eq!(auth::api_token_user(conn, &laptop)?.unwrap().id, "alice");
        assert_eq!(auth::api_token_user(conn, &bobs)?.unwrap().id, "bob");
        assert_eq!(auth::api_token_user(conn, "za_nope")?, None);
        assert_eq!(auth::api_token_user(conn, "")?, None);
        // A token is not a session, nor a session token an API token.
        assert_eq!(auth::session_user(conn, &ci, NOW)?, None);

        assert_eq!(
            auth::api_tokens(conn, "alice")?,
            vec![
                ApiToken {
                    name: "ci".into(),
                    created_at_ms: NOW
                },
                ApiToken {
                    name: "laptop".into(),
                    created_at_ms: NOW + 1
                },
            ]
        );

        for name in ["", "   ", &"x".repeat(101), "ci"] {
            assert!(
                matches!(
                    auth::create_api_token(conn, "alice", name, NOW),
                    Err(DbError::Invalid(_))
                ),
                "{name:?}"
            );
        }
        assert_eq!(
            auth::create_api_token(conn, "mallory", "ci", NOW),
            Err(DbError::not_found("user", "mallory"))
        );
        assert_eq!(
            auth::api_tokens(conn, "alice")?.len(),
            2,
            "refusals add nothing"
        );

        assert!(auth::revoke_api_token(conn, "alice", "ci")?);
        assert!(
            !auth::revoke_api_token(conn, "alice", "ci")?,
            "revoked once"
        );
        assert!(
            !auth::revoke_api_token(conn, "carol", "laptop")?,
            "not carol's"
        );
        assert_eq!(auth::api_token_user(conn, &ci)?, None);
        assert_eq!(auth::api_token_user(conn, &laptop)?.unwrap().id, "alice");
        assert_eq!(auth::api_token_user(conn, &bobs)?.unwrap().id, "bob");

        // The name is free again.
        let again = auth::create_api_token(conn, "alice", "ci", NOW + 3)?;
        assert_ne!(again, ci);
        assert_eq!(auth::api_token_user(conn, &again)?.unwrap().id, "alice");
        Ok(())
    })
    .await
    .unwrap();
}

#[test]
fn hmac_sha256_matches_rfc_4231() {
    // RFC 4231, test cases 1, 2 and 6 (a key longer than the block).
    let cases: [(Vec<u8>, &[u8], &str); 3] = [
        (
            vec![0x0b; 20],
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            vec![0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
    ];
    for (key, data, expected) in cases {
        assert_eq!(payment_signature::sign(&key, data), expected);
        assert!(payment_signature::verify(&key, data, expected));
        assert!(payment_signature::verify(
            &key,
            data,
            &expected.to_uppercase()
        ));
    }
}

#[test]
fn a_tampered_body_signature_or_secret_fails_verification() {
    let secret = [7_u8; SECRET_LEN];
    let body = br#"{"order_id":"o-1","paid":true}"#;
    let signature = payment_signature::sign(&secret, body);
    assert!(payment_signature::verify(&secret, body, &signature));

    assert!(!payment_signature::verify(
        &secret,
        br#"{"order_id":"o-1","paid":false}"#,
        &signature
    ));
    assert!(!payment_signature::verify(&secret, b"", &signature));
    assert!(!payment_signature::verify(
        &[8_u8; SECRET_LEN],
        body,
        &signature
    ));

    let mut flipped = signature.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    for bad in [
        flipped.as_str(),
        &signature[..62],
        &format!("{signature}00"),
        "",
        "not hex at all",
        &format!(" {signature}"),
    ] {
        assert!(!payment_signature::verify(&secret, body, bad), "{bad:?}");
    }
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_secret_file_is_created_once_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = data.join(SECRET_FILE);

    let secret = payment_signature::load_or_create_secret(&data).unwrap();
    assert_eq!(secret.len(), SECRET_LEN);
    assert_ne!(secret, vec![0; SECRET_LEN]);
    assert_eq!(std::fs::read(&file).unwrap(), secret);
    #[cfg(unix)]
    assert_eq!(mode_of(&file), 0o600);
    let names: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [SECRET_FILE], "no temporary file is left behind");

    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        payment_signature::load_or_create_secret(&data).unwrap(),
        secret
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        modified,
        "reused, not rewritten"
    );

    // Another folder gets another secret.
    let other = payment_signature::load_or_create_secret(&dir.path().join("other")).unwrap();
    assert_ne!(other, secret);
}

#[cfg(unix)]
#[test]
fn a_secret_file_with_loose_permissions_is_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secret = payment_signature::load_or_create_secret(dir.path()).unwrap();
    let file = dir.path().join(SECRET_FILE);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        payment_signature::load_or_create_secret(dir.path()).unwrap(),
        secret
    );
    assert_eq!(mode_of(&file), 0o600);
}

#[test]
fn a_secret_file_of_the_wrong_length_is_refused_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(SECRET_FILE);
    std::fs::write(&file, b"short").unwrap();
    let error = payment_signature::load_or_create_secret(dir.path()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains(SECRET_FILE), "{error}");
    assert_eq!(std::fs::read(&file).unwrap(), b"short");
}

#[test]
fn concurrent_first_calls_agree_on_one_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secrets: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| payment_signature::load_or_create_secret(&data).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(secrets.iter().all(|s| *s == secrets[0]));
    assert_eq!(std::fs::read(data.join(SECRET_FILE)).unwrap(), secrets[0]);
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 1);
}
