//! The storefront's credentials: users' passwords, login sessions and per-user API tokens.
//!
//! No secret is stored in the clear. A password is kept as an argon2id hash in PHC string format
//! (`users.password_hash`); a session or API token is 32 random bytes from the operating
//! system's generator, handed to the caller once, and only its SHA-256 is stored, as the
//! primary key it is looked up by. A lookup therefore compares digests, never the tokens, and
//! learns nothing an attacker could use from how long it takes; argon2's own verification
//! compares its output in constant time.
//!
//! **Password hashing is slow by design** (argon2id, 19 MiB of memory and two passes: about
//! 30 ms on one core). [`verify_password`] and [`set_password`] are, like every function here,
//! meant to run inside [`Db::call`](super::Db::call), which keeps them off the async runtime;
//! note that they hold the database thread — and so every other call — for that long. The token
//! functions are as cheap as any other query.
//!
//! ```no_run
//! # async fn demo(db: zeroapp_app::db::Db) -> Result<(), zeroapp_app::db::DbError> {
//! use zeroapp_app::db::auth;
//!
//! const DAY_MS: i64 = 24 * 60 * 60 * 1000;
//! let now_ms = 1_700_000_000_000;
//! let session = db
//!     .call(move |conn| match auth::verify_password(conn, "alice", "alice-password")? {
//!         Some(user) => auth::create_session(conn, &user.id, DAY_MS, now_ms).map(Some),
//!         None => Ok(None),
//!     })
//!     .await?;
//! # let _ = session;
//! # Ok(()) }
//! ```

use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::TryRng;
use rand::rngs::SysRng;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::DbError;
use super::catalog::{self, User};
use super::sql::{atomic, count, from_row, select, select_one, write};

/// How many random bytes a session token, a CSRF token or an API token carries.
pub const TOKEN_BYTES: usize = 32;

/// What every API token starts with, so that one pasted where it should not be is easy to
/// recognize (and to search for).
pub const API_TOKEN_PREFIX: &str = "za_";

/// The longest name an API token may have, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;

/// A hash of a random password no one knows, with the parameters of [`hasher`]. An unknown
/// user's login is checked against it, so that it takes as long as a known user's.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$nz1Y20Q9PRVPMKC+00xLRQ$\
                          p4t4ZvjwsUdPqtE5Szm8nFYMAuQmdGQ1vCAsSr/9f2c";

/// A session just created: what the caller hands to the browser. The token is not stored and
/// cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The session token (64 lowercase hex digits), for the session cookie.
    pub token: String,
    /// The session's CSRF token (64 lowercase hex digits), for the forms of its pages.
    pub csrf_token: String,
    /// When the session expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// The user a valid session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// The logged-in user.
    pub user: User,
    /// The session's CSRF token: a state-changing request must carry it.
    pub csrf_token: String,
    /// When the session expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// An API token as its user sees it in a list: the name, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// The name its user gave it, unique among the user's tokens.
    pub name: String,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

from_row!(ApiToken, "api_tokens", [name, created_at_ms]);

/// A user with the stored hash of its password.
struct Credentials {
    id: String,
    name: String,
    email: String,
    is_admin: bool,
    password_hash: Option<String>,
}

from_row!(
    Credentials,
    "users",
    [id, name, email, is_admin, password_hash]
);

/// A session joined with its user.
struct SessionRow {
    id: String,
    name: String,
    email: String,
    is_admin: bool,
    csrf_token: String,
    expires_at_ms: i64,
}

from_row!(
    SessionRow,
    "sessions JOIN users ON users.id = sessions.user_id",
    [id, name, email, is_admin, csrf_token, expires_at_ms]
);

/// The user with this id if `password` is its password; `None` for a wrong password, an unknown
/// user or a user without a password.
///
/// Slow by design (one argon2id verification, about 30 ms): run it inside
/// [`Db::call`](super::Db::call). An unknown user costs the same verification, against a dummy
/// hash, so the answer's timing does not tell which user ids exist. Fails with
/// [`DbError::Invalid`] if the stored hash is not a PHC string argon2 can check.
pub fn verify_password(
    conn: &Connection,
    user_id: &str,
    password: &str,
) -> Result<Option<User>, DbError> {
    let found: Option<Credentials> = select_one(conn, "WHERE id = ?1", [user_id])?;
    let Some((stored, user)) = found.and_then(|c| {
        let user = User {
            id: c.id,
            name: c.name,
            email: c.email,
            is_admin: c.is_admin,
        };
        c.password_hash.map(|hash| (hash, user))
    }) else {
        // Spend the time a real check takes; the outcome does not matter.
        let _ = check(DUMMY_HASH, password);
        return Ok(None);
    };
    match check(&stored, password) {
        Ok(true) => Ok(Some(user)),
        Ok(false) => Ok(None),
        Err(error) => Err(DbError::Invalid(format!(
            "the stored password hash of user {user_id:?} cannot be checked: {error}"
        ))),
    }
}

/// Sets the user's password (stored as an argon2id hash with a fresh random salt) and ends
/// every session the user has, so that a session opened with the old password — perhaps by
/// someone else — dies with it. The user's API tokens stay. Returns how many sessions ended;
/// a caller changing the password of the user it serves opens a new session afterwards.
///
/// Slow by design (one argon2id hash, about 30 ms): run it inside
/// [`Db::call`](super::Db::call). Refuses an empty password with [`DbError::Invalid`] and an
/// unknown user with [`DbError::NotFound`]; it changes nothing then.
pub fn set_password(conn: &Connection, user_id: &str, password: &str) -> Result<usize, DbError> {
    if password.is_empty() {
        return Err(DbError::Invalid("a password cannot be empty".into()));
    }
    let hash = hash_password(password)?;
    atomic(conn, |conn| {
        let changed = write(
            conn,
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            (user_id, &hash),
        )?;
        if changed == 0 {
            return Err(DbError::not_found("user", user_id));
        }
        write(conn, "DELETE FROM sessions WHERE user_id = ?1", [user_id])
    })
}

/// Opens a session for the user, valid from `now_ms` for `ttl_ms` milliseconds, and returns its
/// token and CSRF token. Only the token's SHA-256 is stored.
///
/// Refuses a `ttl_ms` that is not positive (or overflows) with [`DbError::Invalid`] and an
/// unknown user with [`DbError::NotFound`].
pub fn create_session(
    conn: &Connection,
    user_id: &str,
    ttl_ms: i64,
    now_ms: i64,
) -> Result<NewSession, DbError> {
    let expires_at_ms = now_ms
        .checked_add(ttl_ms)
        .filter(|_| ttl_ms > 0)
        .ok_or_else(|| DbError::Invalid(format!("a session cannot last {ttl_ms} ms")))?;
    if catalog::user(conn, user_id)?.is_none() {
        return Err(DbError::not_found("user", user_id));
    }
    let token = random_hex()?;
    let csrf_token = random_hex()?;
    write(
        conn,
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at_ms, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (
            token_hash(&token),
            user_id,
            &csrf_token,
            now_ms,
            expires_at_ms,
        ),
    )?;
    Ok(NewSession {
        token,
        csrf_token,
        expires_at_ms,
    })
}

/// The user of the session whose token this is, with the session's CSRF token; `None` for an
/// unknown token or a session expired at `now_ms` (valid while `now_ms < expires_at_ms`).
///
/// Reads only: the expiry does not slide, and an expired row stays until [`purge_expired`].
pub fn session_user(
    conn: &Connection,
    token: &str,
    now_ms: i64,
) -> Result<Option<SessionUser>, DbError> {
    let found: Option<SessionRow> = select_one(
        conn,
        "WHERE sessions.token_hash = ?1 AND sessions.expires_at_ms > ?2",
        (token_hash(token), now_ms),
    )?;
    Ok(found.map(|row| SessionUser {
        user: User {
            id: row.id,
            name: row.name,
            email: row.email,
            is_admin: row.is_admin,
        },
        csrf_token: row.csrf_token,
        expires_at_ms: row.expires_at_ms,
    }))
}

/// Ends the session whose token this is (logging out). Returns whether there was one.
pub fn delete_session(conn: &Connection, token: &str) -> Result<bool, DbError> {
    Ok(write(
        conn,
        "DELETE FROM sessions WHERE token_hash = ?1",
        [token_hash(token)],
    )? > 0)
}

/// Ends every session of the user ("log out everywhere"). Returns how many there were.
pub fn delete_user_sessions(conn: &Connection, user_id: &str) -> Result<usize, DbError> {
    write(conn, "DELETE FROM sessions WHERE user_id = ?1", [user_id])
}

/// Deletes the sessions expired at `now_ms` and returns how many. Meant to run now and then;
/// lookups ignore expired sessions whether or not they were purged.
pub fn purge_expired(conn: &Connection, now_ms: i64) -> Result<usize, DbError> {
    write(
        conn,
        "DELETE FROM sessions WHERE expires_at_ms <= ?1",
        [now_ms],
    )
}

/// How many sessions are valid at `now_ms`, all users together.
pub fn active_sessions(conn: &Connection, now_ms: i64) -> Result<i64, DbError> {
    count(
        conn,
        "SELECT COUNT(*) FROM sessions WHERE expires_at_ms > ?1",
        [now_ms],
    )
}

/// Creates an API token named `name` for the user and returns it: `za_` followed by 64
/// lowercase hex digits. This is the only time the token can be seen; only its SHA-256 is
/// stored.
///
/// Refuses with [`DbError::Invalid`] a name that is blank, longer than
/// [`MAX_TOKEN_NAME_CHARS`], or already used by one of the user's tokens, and an unknown user
/// with [`DbError::NotFound`].
pub fn create_api_token(
    conn: &Connection,
    user_id: &str,
    name: &str,
    now_ms: i64,
) -> Result<String, DbError> {
    if name.trim().is_empty() || name.chars().count() > MAX_TOKEN_NAME_CHARS {
        return Err(DbError::Invalid(format!(
            "an API token's name must have 1 to {MAX_TOKEN_NAME_CHARS} characters, not blank"
        )));
    }
    let token = format!("{API_TOKEN_PREFIX}{}", random_hex()?);
    atomic(conn, |conn| {
        if catalog::user(conn, user_id)?.is_none() {
            return Err(DbError::not_found("user", user_id));
        }
        let taken = count(
            conn,
            "SELECT COUNT(*) FROM api_tokens WHERE user_id = ?1 AND name = ?2",
            (user_id, name),
        )?;
        if taken > 0 {
            return Err(DbError::Invalid(format!(
                "user {user_id:?} already has an API token named {name:?}"
            )));
        }
        write(
            conn,
            "INSERT INTO api_tokens (token_hash, user_id, name, created_at_ms)
             VALUES (?1, ?2, ?3, ?4)",
            (token_hash(&token), user_id, name, now_ms),
        )
    })?;
    Ok(token)
}

/// The user this API token belongs to; `None` for an unknown or revoked token.
pub fn api_token_user(conn: &Connection, token: &str) -> Result<Option<User>, DbError> {
    select_one(
        conn,
        "WHERE id = (SELECT user_id FROM api_tokens WHERE token_hash = ?1)",
        [token_hash(token)],
    )
}

/// The user's API tokens (names and creation times, never the tokens), oldest first.
pub fn api_tokens(conn: &Connection, user_id: &str) -> Result<Vec<ApiToken>, DbError> {
    select(
        conn,
        "WHERE user_id = ?1 ORDER BY created_at_ms, name",
        [user_id],
    )
}

/// Revokes the user's API token named `name`: the token stops working at once. Returns whether
/// there was one.
pub fn revoke_api_token(conn: &Connection, user_id: &str, name: &str) -> Result<bool, DbError> {
    Ok(write(
        conn,
        "DELETE FROM api_tokens WHERE user_id = ?1 AND name = ?2",
        (user_id, name),
    )? > 0)
}

/// The lowercase hex SHA-256 of a token: the key its row is stored and looked up under.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The argon2 instance every password is hashed with: argon2id, version 0x13, 19 MiB of
/// memory, two passes, one lane (OWASP's first recommendation). Verification reads the
/// parameters from the stored PHC string, so changing these later leaves old hashes valid.
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// `password` hashed with [`hasher`] and a fresh 16-byte salt, as a PHC string.
fn hash_password(password: &str) -> Result<String, DbError> {
    let mut salt = [0_u8; 16];
    fill_random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| DbError::Invalid(format!("cannot encode a password salt: {e}")))?;
    let hash = hasher()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| DbError::Invalid(format!("cannot hash the password: {e}")))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `stored`. Fails if `stored` cannot be parsed or
/// names parameters argon2 refuses.
fn check(stored: &str, password: &str) -> Result<bool, password_hash::Error> {
    let parsed = PasswordHash::new(stored)?;
    match hasher().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::Password) => Ok(false),
        Err(error) => Err(error),
    }
}

/// [`TOKEN_BYTES`] random bytes from the operating system, as lowercase hex.
fn random_hex() -> Result<String, DbError> {
    let mut bytes = [0_u8; TOKEN_BYTES];
    fill_random(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Fills `bytes` from the operating system's generator. Its failure is reported as
/// [`DbError::Sqlite`], the layer's retryable failure, since `DbError` has no variant of its own
/// for it.
fn fill_random(bytes: &mut [u8]) -> Result<(), DbError> {
    SysRng.try_fill_bytes(bytes).map_err(|e| {
        DbError::Sqlite(format!(
            "the operating system's random number generator failed: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let dummy = PasswordHash::new(DUMMY_HASH).expect("a PHC string");
        let params = Params::try_from(&dummy).expect("argon2 parameters");
        assert_eq!(dummy.algorithm, Algorithm::Argon2id.ident());
        assert_eq!(dummy.version, Some(Version::V0x13.into()));
        let default = Params::default();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (default.m_cost(), default.t_cost(), default.p_cost())
        );
        assert_eq!(check(DUMMY_HASH, "").ok(), Some(false));
    }
}
