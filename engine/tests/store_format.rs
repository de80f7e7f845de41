//! The data file: versioned, exclusive to one process, reopened with its contents.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use zeroapp_engine::prelude::*;
use zeroapp_engine::{DATA_FILE, OpenError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_the_same_folder_is_refused_while_the_first_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(common::builder(), dir.path()).await;
    match common::builder().open(dir.path()).await {
        Err(OpenError::Locked(path)) => assert!(path.ends_with(DATA_FILE)),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("opened a data file that is in use"),
    }
    engine.shutdown().await;
    let again = common::open(common::builder(), dir.path()).await;
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_another_format_version_is_refused_with_both_versions_named() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = redb::Database::create(dir.path().join(DATA_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
            let mut table = txn.open_table(meta).unwrap();
            table.insert("format_version", 999).unwrap();
        }
        txn.commit().unwrap();
    }
    match common::builder().open(dir.path()).await {
        Err(
            error @ OpenError::IncompatibleFormat {
                found: 999,
                expected: 3,
                ..
            },
        ) => {
            assert!(error.to_string().contains("999"), "{error}");
        }
        Err(other) => panic!("expected IncompatibleFormat, got {other}"),
        Ok(_) => panic!("opened a file of another format"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_that_cannot_be_created_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    match common::builder().open(file.join("data")).await {
        Err(OpenError::Io { .. }) => {}
        Err(other) => panic!("expected Io, got {other}"),
        Ok(_) => panic!("opened a folder under a file"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_results_survive_a_clean_reopen() {
    async fn put(ctx: ObjectContext, v: String) -> Result<(), HandlerError> {
        ctx.set("v", &v)?;
        Ok(())
    }
    let dir = tempfile::tempdir().unwrap();
    let object = || VirtualObject::new("Box").exclusive("put", put);
    let engine = common::open(common::builder().register(object()), dir.path()).await;
    let id = engine
        .client()
        .send(Target::object("Box", "b", "put"), &"kept")
        .await
        .unwrap();
    engine.client().attach::<()>(id).await.unwrap();
    engine.shutdown().await;
    let engine = common::open(common::builder().register(object()), dir.path()).await;
    assert_eq!(
        engine.object_state("Box", "b").unwrap(),
        vec![("v".to_owned(), b"\"kept\"".to_vec())]
    );
    engine.client().attach::<()>(id).await.unwrap();
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_cut_short_by_a_crash_leaves_a_folder_that_opens() {
    let dir = tempfile::tempdir().unwrap();
    // What a kill during the very first open leaves: a partial file under the temporary name.
    std::fs::write(
        dir.path().join("engine.redb.creating"),
        b"redb\x1a half a header",
    )
    .unwrap();
    let engine = common::open(common::builder(), dir.path()).await;
    engine.shutdown().await;
    assert!(dir.path().join(zeroapp_engine::DATA_FILE).exists());
    assert!(!dir.path().join("engine.redb.creating").exists());
}

/// Damage as disks and copies do it, applied to a stopped data file.
fn damage(file: &std::path::Path, how: &str) {
    let mut bytes = std::fs::read(file).unwrap();
    match how {
        "truncated to 1 KiB" => bytes.truncate(1024),
        "header zeroed" => {
            let end = 512.min(bytes.len());
            bytes[..end].fill(0);
        }
        "a page overwritten" => {
            let end = 8192.min(bytes.len());
            bytes[4096.min(end)..end].fill(0xA5);
        }
        "empty" => bytes.clear(),
        other => panic!("no damage {other}"),
    }
    std::fs::write(file, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_data_file_is_refused_naming_it_never_a_panic() {
    for how in [
        "truncated to 1 KiB",
        "header zeroed",
        "a page overwritten",
        "empty",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let engine = common::open(
            common::builder().register(VirtualObject::new("Counter").exclusive(
                "add",
                |ctx: ObjectContext, n: i64| async move {
                    let total = ctx.get::<i64>("total").await?.unwrap_or(0) + n;
                    ctx.set("total", &total)?;
                    Ok::<_, HandlerError>(total)
                },
            )),
            dir.path(),
        )
        .await;
        for key in 0..50 {
            let target = Target::object("Counter", key.to_string(), "add");
            engine.client().call::<_, i64>(target, &1).await.unwrap();
        }
        engine.shutdown().await;
        let file = dir.path().join(DATA_FILE);
        damage(&file, how);
        // Any answer but a panic: refused naming the file, or (for an empty file, which holds
        // nothing to lose) opened afresh.
        match common::builder().open(dir.path()).await {
            Err(error) => {
                let message = error.to_string();
                assert!(message.contains(DATA_FILE), "{how}: {message}");
                eprintln!("{how}: refused: {message}");
            }
            Ok(engine) => {
                eprintln!("{how}: opened");
                engine.shutdown().await;
            }
        }
    }
}

/// Rewrites every value of a bincode table of the engine's file with `change`.
fn rewrite<K>(
    db: &redb::Database,
    table: redb::TableDefinition<K, &[u8]>,
    change: impl Fn(&mut Vec<u8>),
) where
    K: redb::Key + 'static + for<'a> redb::Value<SelfType<'a> = K>,
{
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(table).unwrap();
        let rows: Vec<(K, Vec<u8>)> = redb::ReadableTable::iter(&t)
            .unwrap()
            .map(|row| {
                let (k, v) = row.unwrap();
                (k.value(), v.value().to_vec())
            })
            .collect();
        for (key, mut value) in rows {
            change(&mut value);
            t.insert(key, value.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

async fn counter_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(
        common::builder().register(VirtualObject::new("Counter").exclusive(
            "add",
            |ctx: ObjectContext, n: i64| async move {
                let total = ctx.get::<i64>("total").await?.unwrap_or(0) + n;
                ctx.set("total", &total)?;
                Ok::<_, HandlerError>(total)
            },
        )),
        dir.path(),
    )
    .await;
    for _ in 0..3 {
        let target = Target::object("Counter", "a", "add");
        engine.client().call::<_, i64>(target, &2).await.unwrap();
    }
    engine.shutdown().await;
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_2_file_is_upgraded_with_checksums_and_keeps_its_contents() {
    let dir = counter_folder().await;
    {
        // Back to format 2: the same records without their checksums.
        let db = redb::Database::create(dir.path().join(DATA_FILE)).unwrap();
        let strip = |v: &mut Vec<u8>| v.truncate(v.len() - 4);
        rewrite(
            &db,
            redb::TableDefinition::<u64, &[u8]>::new("invocations"),
            strip,
        );
        rewrite(
            &db,
            redb::TableDefinition::<(u64, u32), &[u8]>::new("journal"),
            strip,
        );
        let txn = db.begin_write().unwrap();
        {
            let state: redb::TableDefinition<(&str, &str), &[u8]> =
                redb::TableDefinition::new("state");
            let mut table = txn.open_table(state).unwrap();
            let rows: Vec<((String, String), Vec<u8>)> = redb::ReadableTable::iter(&table)
                .unwrap()
                .map(|row| {
                    let (k, v) = row.unwrap();
                    let (instance, key) = k.value();
                    let v = v.value();
                    (
                        (instance.to_owned(), key.to_owned()),
                        v[..v.len() - 4].to_vec(),
                    )
                })
                .collect();
            for ((instance, key), value) in rows {
                table
                    .insert((instance.as_str(), key.as_str()), value.as_slice())
                    .unwrap();
            }
        }
        {
            let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
            txn.open_table(meta)
                .unwrap()
                .insert("format_version", 2)
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let engine = common::open(common::builder(), dir.path()).await;
    let all = engine
        .list_invocations(&zeroapp_engine::InvocationFilter::default())
        .unwrap();
    assert_eq!(all.len(), 3);
    let journal = engine.journal(all[0].id).unwrap().unwrap();
    assert!(!journal.is_empty());
    let total: Option<i64> = engine
        .client()
        .state("Counter", "a", "total")
        .await
        .unwrap();
    assert_eq!(total, Some(6), "state values upgraded too");
    engine.shutdown().await;
    let report = Engine::check(dir.path()).await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_journal_value_is_reported_as_damage_with_its_invocation_and_entry() {
    let dir = counter_folder().await;
    {
        let db = redb::Database::create(dir.path().join(DATA_FILE)).unwrap();
        // One byte of every journal entry's payload changed, as a disk can.
        rewrite(
            &db,
            redb::TableDefinition::<(u64, u32), &[u8]>::new("journal"),
            |v| {
                v[0] ^= 0x04;
            },
        );
    }
    let report = Engine::check(dir.path()).await.unwrap();
    assert!(!report.problems.is_empty());
    for problem in &report.problems {
        assert!(
            problem.contains("journal entry") && problem.contains("checksum mismatch"),
            "{problem}"
        );
        assert!(problem.contains("inv_"), "{problem}");
    }
}
