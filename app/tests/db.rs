#![allow(clippy::unwrap_used)]
//! The SQLite layer against a real database file in a temporary folder: migrations, seed data,
//! and the idempotency of every write a durable step makes.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use tempfile::TempDir;
use zeroapp_app::db::migrate::{self, MIGRATIONS};
use zeroapp_app::db::orders::{NewOrder, OrderItem};
use zeroapp_app::db::payments::PaymentStatus;
use zeroapp_app::db::shipments::ShipmentStatus;
use zeroapp_app::db::{Db, DbError, catalog, notifications, orders, payments, shipments, stock};

const NOW: i64 = 1_700_000_000_000;

/// A product the seed stocks with exactly 10 units.
const TEN_IN_STOCK: i64 = 18;

async fn fresh() -> (TempDir, PathBuf, Db) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.sqlite");
    let db = Db::open(&path).await.unwrap();
    (dir, path, db)
}

/// Runs `f` on the connection of a fresh database file.
async fn on_fresh_db(f: impl FnOnce(&mut Connection) -> Result<(), DbError> + Send + 'static) {
    let (_dir, _path, db) = fresh().await;
    db.call(f).await.unwrap();
}

fn recorded_migrations(path: &Path) -> Vec<(i64, String, i64)> {
    let conn = Connection::open(path).unwrap();
    let mut statement = conn
        .prepare("SELECT version, name, applied_at_ms FROM schema_migrations ORDER BY version")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn stock_of(conn: &Connection, product_id: i64) -> u32 {
    stock::stock_of(conn, product_id).unwrap().unwrap()
}

fn new_order(id: &str, user: &str) -> NewOrder {
    NewOrder {
        id: id.into(),
        user_id: user.into(),
        items: vec![
            OrderItem {
                product_id: 1,
                sku: "TENT-2P".into(),
                name: "Ridgeline 2-Person Tent".into(),
                quantity: 2,
                unit_price_cents: 24_900,
            },
            OrderItem {
                product_id: 16,
                sku: "SOCK-MER".into(),
                name: "Merino Hiking Socks (2 pk)".into(),
                quantity: 3,
                unit_price_cents: 2_400,
            },
        ],
        shipping_cents: 499,
        zone: "domestic".into(),
        address: "1 Main St, Springfield".into(),
        carrier: "ZeroPost".into(),
        status: "awaiting_payment".into(),
    }
}

#[tokio::test]
async fn migrations_are_applied_once_recorded_and_not_again_on_reopen() {
    let (_dir, path, db) = fresh().await;
    let first = recorded_migrations(&path);
    let expected: Vec<(i64, String)> = MIGRATIONS
        .iter()
        .map(|m| (m.version, m.name.to_string()))
        .collect();
    assert_eq!(
        first
            .iter()
            .map(|(v, n, _)| (*v, n.clone()))
            .collect::<Vec<_>>(),
        expected
    );
    assert!(first.iter().all(|(_, _, at)| *at > 1_600_000_000_000));

    // Applying again on the open connection finds nothing to do.
    let again = db.call(migrate::apply).await.unwrap();
    assert!(again.is_empty());
    drop(db);

    let reopened = Db::open(&path).await.unwrap();
    assert_eq!(
        recorded_migrations(&path),
        first,
        "reopening applied nothing"
    );
    let products = reopened.call(|c| catalog::products(c)).await.unwrap();
    assert_eq!(products.len(), 24, "the seed ran once, not twice");
}

#[test]
fn every_migration_file_is_embedded_in_order() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    files.sort();
    let embedded: Vec<String> = MIGRATIONS
        .iter()
        .map(|m| format!("{:04}_{}.sql", m.version, m.name))
        .collect();
    assert_eq!(files, embedded);
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        assert_eq!(migration.version, i64::try_from(index).unwrap() + 1);
        let on_disk = std::fs::read_to_string(folder.join(&embedded[index])).unwrap();
        assert_eq!(on_disk, migration.sql);
    }
    assert_eq!(migrate::latest_version(), 6);
}

/// Creates a database, changes it behind the layer's back with `sql`, and opens it again.
async fn reopen_after(sql: &str) -> Result<Db, DbError> {
    let (_dir, path, db) = fresh().await;
    drop(db);
    Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    Db::open(&path).await
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused_naming_both_versions() {
    let error = reopen_after(
        "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (99, 'future', 0)",
    )
    .await
    .unwrap_err();
    assert_eq!(
        error,
        DbError::SchemaTooNew {
            found: 99,
            supported: migrate::latest_version()
        }
    );
    let message = error.to_string();
    assert!(
        message.contains("version 99")
            && message.contains(&format!("version {}", migrate::latest_version())),
        "{message}"
    );
    assert!(error.is_terminal());
}

#[tokio::test]
async fn a_renamed_migration_is_refused() {
    let reopened =
        reopen_after("UPDATE schema_migrations SET name = 'other' WHERE version = 2").await;
    assert!(matches!(
        reopened,
        Err(DbError::MigrationMismatch { version: 2, .. })
    ));
}

#[tokio::test]
async fn open_creates_the_folder_and_configures_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/app.sqlite");
    let db = Db::open(&path).await.unwrap();
    assert!(path.exists());
    let (mode, synchronous, foreign_keys): (String, i64, i64) = db
        .call(|conn| {
            Ok((
                conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(synchronous, 2, "FULL");
    assert_eq!(foreign_keys, 1);
}

#[tokio::test]
async fn an_unopenable_path_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let error = Db::open(file.join("app.sqlite")).await.unwrap_err();
    assert!(matches!(error, DbError::Open { .. }), "{error:?}");
}

#[tokio::test]
async fn the_seed_has_a_catalog_users_with_an_admin_and_zones() {
    on_fresh_db(|conn| {
        let products = catalog::products(conn)?;
        assert!(products.len() >= 20);
        assert!(products.iter().all(|p| p.price_cents > 0 && p.stock > 0));
        let tent = catalog::product_by_sku(conn, "TENT-2P")?.unwrap();
        assert_eq!(catalog::product(conn, tent.id)?, Some(tent));
        assert_eq!(catalog::product(conn, 999)?, None);

        let users = catalog::users(conn)?;
        assert!(users.len() >= 3);
        assert_eq!(users.iter().filter(|u| u.is_admin).count(), 1);
        let alice = catalog::user(conn, "alice")?.unwrap();
        assert!(!alice.is_admin);
        assert!(catalog::user(conn, "admin")?.unwrap().is_admin);

        let zones = catalog::zones(conn)?;
        assert!(zones.len() >= 3);
        assert!(zones.windows(2).all(|w| w[0].cost_cents <= w[1].cost_cents));
        assert_eq!(catalog::zone(conn, "domestic")?.unwrap().cost_cents, 499);
        assert_eq!(catalog::zone(conn, "mars")?, None);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn reserve_is_idempotent_per_order_and_release_returns_stock_once() {
    on_fresh_db(|conn| {
        let (tent, pad) = (stock_of(conn, 1), stock_of(conn, 5));
        // Two lines for product 1 are merged.
        let first = stock::reserve(conn, "o-1", &[(1, 2), (5, 1), (1, 1)], NOW)?;
        assert_eq!(
            first
                .lines
                .iter()
                .map(|l| (l.product_id, l.quantity))
                .collect::<Vec<_>>(),
            vec![(1, 3), (5, 1)]
        );
        assert!(!first.released);
        assert_eq!((stock_of(conn, 1), stock_of(conn, 5)), (tent - 3, pad - 1));

        // A replay — even one asking for something else — changes nothing.
        let again = stock::reserve(conn, "o-1", &[(1, 7)], NOW + 5)?;
        assert_eq!(again, first);
        assert_eq!((stock_of(conn, 1), stock_of(conn, 5)), (tent - 3, pad - 1));
        let level = stock::levels(conn)?
            .into_iter()
            .find(|l| l.product_id == 1)
            .unwrap();
        assert_eq!((level.stock, level.reserved), (tent - 3, 3));

        assert!(stock::release(conn, "o-1")?);
        assert_eq!((stock_of(conn, 1), stock_of(conn, 5)), (tent, pad));
        assert!(
            !stock::release(conn, "o-1")?,
            "a second release changes nothing"
        );
        assert_eq!((stock_of(conn, 1), stock_of(conn, 5)), (tent, pad));
        assert!(stock::reservation(conn, "o-1")?.unwrap().released);

        // A released reservation stays released: a replayed reserve does not take stock again.
        assert!(stock::reserve(conn, "o-1", &[(1, 3), (5, 1)], NOW)?.released);
        assert_eq!(stock_of(conn, 1), tent);
        assert!(!stock::release(conn, "no-such-order")?);
        assert_eq!(stock::reservation(conn, "no-such-order")?, None);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_short_line_refuses_the_whole_reservation_and_changes_nothing() {
    on_fresh_db(|conn| {
        let before = stock::levels(conn)?;
        let error =
            stock::reserve(conn, "o-short", &[(1, 1), (TEN_IN_STOCK, 11)], NOW).unwrap_err();
        assert_eq!(
            error,
            DbError::OutOfStock {
                product_id: TEN_IN_STOCK,
                name: "Handheld GPS Navigator".into(),
                requested: 11,
                available: 10,
            }
        );
        assert!(error.is_terminal());
        assert!(error.to_string().contains("11 requested, 10 available"));
        assert_eq!(stock::levels(conn)?, before);
        assert_eq!(stock::reservation(conn, "o-short")?, None);

        assert!(matches!(
            stock::reserve(conn, "o-x", &[(1, 1), (999, 1)], NOW),
            Err(DbError::NotFound {
                what: "product",
                ..
            })
        ));
        assert!(matches!(
            stock::reserve(conn, "o-x", &[], NOW),
            Err(DbError::Invalid(_))
        ));
        assert!(matches!(
            stock::reserve(conn, "o-x", &[(1, 0)], NOW),
            Err(DbError::Invalid(_))
        ));
        assert_eq!(stock::levels(conn)?, before);

        // Exactly what is left can be reserved.
        stock::reserve(conn, "o-all", &[(TEN_IN_STOCK, 10)], NOW)?;
        assert_eq!(stock_of(conn, TEN_IN_STOCK), 0);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn orders_are_created_once_and_each_status_event_is_recorded_once() {
    on_fresh_db(|conn| {
        let order = orders::create_order(conn, &new_order("o-1", "alice"), NOW)?;
        assert_eq!(order.subtotal_cents, 2 * 24_900 + 3 * 2_400);
        assert_eq!(order.total_cents, order.subtotal_cents + 499);
        assert_eq!(order.status, "awaiting_payment");
        assert_eq!((order.created_at_ms, order.updated_at_ms), (NOW, NOW));
        assert!(orders::history(conn, "o-1")?.is_empty());

        // The same id again, even from someone else: the stored order comes back unchanged.
        let mut other = new_order("o-1", "bob");
        other.address = "elsewhere".into();
        assert_eq!(orders::create_order(conn, &other, NOW + 9)?, order);

        assert!(orders::record_status(
            conn,
            "o-1",
            "paid",
            "receipt 7",
            "o-1/paid",
            NOW + 1
        )?);
        assert!(!orders::record_status(
            conn,
            "o-1",
            "paid",
            "again",
            "o-1/paid",
            NOW + 2
        )?);
        assert!(orders::record_status(
            conn,
            "o-1",
            "shipped",
            "",
            "o-1/shipped",
            NOW + 3
        )?);
        // A replay of an older event does not move the status back.
        assert!(!orders::record_status(
            conn,
            "o-1",
            "paid",
            "",
            "o-1/paid",
            NOW + 4
        )?);

        let stored = orders::order(conn, "o-1")?.unwrap();
        assert_eq!(
            (stored.status.as_str(), stored.updated_at_ms),
            ("shipped", NOW + 3)
        );
        let history = orders::history(conn, "o-1")?;
        assert_eq!(
            history
                .iter()
                .map(|h| (h.status.as_str(), h.detail.as_str(), h.at_ms))
                .collect::<Vec<_>>(),
            vec![("paid", "receipt 7", NOW + 1), ("shipped", "", NOW + 3)]
        );

        assert!(matches!(
            orders::record_status(conn, "nope", "paid", "", "nope/paid", NOW),
            Err(DbError::NotFound { what: "order", .. })
        ));

        orders::create_order(conn, &new_order("o-2", "alice"), NOW + 10)?;
        orders::create_order(conn, &new_order("o-3", "bob"), NOW + 20)?;
        let ids = |list: Vec<orders::Order>| list.into_iter().map(|o| o.id).collect::<Vec<_>>();
        assert_eq!(ids(orders::orders_of(conn, "alice")?), vec!["o-2", "o-1"]);
        assert_eq!(ids(orders::all_orders(conn, 2)?), vec!["o-3", "o-2"]);
        assert_eq!(orders::order(conn, "nope")?, None);

        let mut empty = new_order("o-empty", "alice");
        empty.items.clear();
        assert!(matches!(
            orders::create_order(conn, &empty, NOW),
            Err(DbError::Invalid(_))
        ));
        let unknown_user = orders::create_order(conn, &new_order("o-4", "mallory"), NOW);
        assert!(
            matches!(unknown_user, Err(DbError::Sqlite(_))),
            "{unknown_user:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_notification_is_added_once_per_event_key() {
    on_fresh_db(|conn| {
        let note = notifications::add(
            conn,
            Some("alice"),
            "o-1",
            "paid",
            "Paid",
            "o-1/paid/user",
            NOW,
        )?
        .unwrap();
        assert_eq!(note.user_id.as_deref(), Some("alice"));
        assert!(!note.read);
        let replay = notifications::add(
            conn,
            Some("alice"),
            "o-1",
            "paid",
            "Paid!",
            "o-1/paid/user",
            NOW,
        )?;
        assert_eq!(replay, None);

        let admin = notifications::add(
            conn,
            None,
            "o-1",
            "paid",
            "Paid",
            "o-1/paid/admins",
            NOW + 1,
        )?
        .unwrap();
        notifications::add(
            conn,
            Some("alice"),
            "o-1",
            "shipped",
            "Shipped",
            "o-1/s/user",
            NOW + 2,
        )?;
        notifications::add(
            conn,
            Some("bob"),
            "o-2",
            "paid",
            "Paid",
            "o-2/paid/user",
            NOW + 3,
        )?;

        let alice = notifications::for_user(conn, "alice", 10)?;
        assert_eq!(
            alice.iter().map(|n| n.kind.as_str()).collect::<Vec<_>>(),
            ["shipped", "paid"]
        );
        assert_eq!(notifications::for_user(conn, "alice", 1)?.len(), 1);
        assert_eq!(notifications::for_admins(conn, 10)?, vec![admin.clone()]);
        assert_eq!(notifications::since(conn, note.id, 10)?.len(), 3);

        assert_eq!(notifications::unread_count(conn, Some("alice"))?, 2);
        assert_eq!(notifications::unread_count(conn, None)?, 1);
        assert!(notifications::mark_read(conn, note.id)?);
        assert!(!notifications::mark_read(conn, note.id)?);
        assert!(!notifications::mark_read(conn, 12_345)?);
        assert_eq!(notifications::unread_count(conn, Some("alice"))?, 1);
        assert!(notifications::mark_read(conn, admin.id)?);
        assert_eq!(notifications::unread_count(conn, None)?, 0);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_payment_is_requested_once_and_decided_once() {
    on_fresh_db(|conn| {
        let request = payments::request(conn, "o-1", "alice", 5_000, "awk-1", NOW)?;
        assert_eq!(request.status, PaymentStatus::Pending);
        assert_eq!(request.decided_at_ms, None);
        // A replay returns the stored request, with its first awakeable.
        assert_eq!(
            payments::request(conn, "o-1", "alice", 9_999, "awk-2", NOW + 1)?,
            request
        );
        payments::request(conn, "o-2", "bob", 700, "awk-3", NOW + 2)?;
        let pending: Vec<String> = payments::pending(conn)?
            .into_iter()
            .map(|p| p.order_id)
            .collect();
        assert_eq!(pending, ["o-1", "o-2"]);

        let paid = payments::decide(conn, "o-1", true, NOW + 3)?;
        assert_eq!(
            (paid.status, paid.decided_at_ms),
            (PaymentStatus::Paid, Some(NOW + 3))
        );
        assert_eq!(paid.awakeable_id, "awk-1");
        assert!(paid.status.is_paid());
        let twice = payments::decide(conn, "o-1", false, NOW + 4).unwrap_err();
        assert_eq!(
            twice,
            DbError::AlreadyDecided {
                order_id: "o-1".into(),
                status: PaymentStatus::Paid
            }
        );
        assert!(twice.is_terminal());
        assert_eq!(payments::payment(conn, "o-1")?, Some(paid));

        let declined = payments::decide(conn, "o-2", false, NOW + 5)?;
        assert_eq!(declined.status, PaymentStatus::Declined);
        assert!(payments::pending(conn)?.is_empty());
        assert!(matches!(
            payments::decide(conn, "o-9", true, NOW),
            Err(DbError::NotFound { .. })
        ));
        assert_eq!(payments::payment(conn, "o-9")?, None);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_shipment_is_created_once_and_cancelled_once() {
    on_fresh_db(|conn| {
        let shipment = shipments::create(conn, "o-1", "ZeroPost", "ZP-1", 1, NOW)?;
        assert_eq!(shipment.status, ShipmentStatus::Active);
        assert_eq!(
            shipments::create(conn, "o-1", "Other", "ZP-2", 1, NOW + 1)?,
            shipment
        );
        shipments::create(conn, "o-2", "ZeroPost", "ZP-3", 1, NOW)?;
        assert_eq!(shipments::count_active(conn)?, 2);

        assert!(shipments::cancel(conn, "o-1", NOW + 2)?);
        assert!(!shipments::cancel(conn, "o-1", NOW + 3)?);
        assert!(!shipments::cancel(conn, "never-shipped", NOW)?);
        let cancelled = shipments::shipment(conn, "o-1")?.unwrap();
        assert_eq!(
            (cancelled.status, cancelled.cancelled_at_ms),
            (ShipmentStatus::Cancelled, Some(NOW + 2))
        );
        assert_eq!(shipments::count_active(conn)?, 1);
        // A replayed create after the cancellation does not revive it.
        assert_eq!(
            shipments::create(conn, "o-1", "ZeroPost", "ZP-1", 1, NOW)?,
            cancelled
        );
        assert_eq!(shipments::shipment(conn, "o-9")?, None);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn repository_writes_compose_into_the_callers_transaction() {
    on_fresh_db(|conn| {
        orders::create_order(conn, &new_order("o-1", "alice"), NOW)?;
        let before = stock::levels(conn)?;
        let tx = conn.transaction()?;
        stock::reserve(&tx, "o-1", &[(1, 2)], NOW)?;
        orders::record_status(&tx, "o-1", "reserved", "", "o-1/reserved", NOW)?;
        // A refusal inside rolls back its own savepoint only.
        assert!(stock::reserve(&tx, "o-2", &[(TEN_IN_STOCK, 50)], NOW).is_err());
        assert_eq!(stock_of(&tx, 1), before[0].stock - 2);
        drop(tx); // rolled back
        assert_eq!(stock::levels(conn)?, before);
        assert!(orders::history(conn, "o-1")?.is_empty());
        assert_eq!(stock::reservation(conn, "o-1")?, None);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_panicking_call_or_a_leaked_transaction_leaves_the_database_usable() {
    let (_dir, _path, db) = fresh().await;
    let before = db.call(|conn| Ok(stock_of(conn, 1))).await.unwrap();

    let leaked = db
        .call(|conn| {
            conn.execute_batch("BEGIN; UPDATE products SET stock = 0 WHERE id = 1")?;
            Ok(())
        })
        .await;
    assert_eq!(leaked, Ok(()));
    assert_eq!(db.call(|conn| Ok(stock_of(conn, 1))).await.unwrap(), before);

    let panicked = db
        .call(|conn| -> Result<(), DbError> {
            conn.execute_batch("BEGIN; UPDATE products SET stock = 0 WHERE id = 1")?;
            panic!("boom");
        })
        .await;
    assert_eq!(panicked, Err(DbError::Panicked("boom".into())));
    assert_eq!(db.call(|conn| Ok(stock_of(conn, 1))).await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_share_one_db_and_stock_is_never_oversold() {
    let (_dir, path, db) = fresh().await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.call(move |conn| {
                    stock::reserve(conn, &format!("o-{i}"), &[(TEN_IN_STOCK, 1)], NOW)
                })
                .await
            })
        })
        .collect();
    let mut reserved = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => reserved += 1,
            Err(DbError::OutOfStock { available: 0, .. }) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((reserved, refused), (10, 54));

    // Concurrent reads and replays alongside.
    let reads: Vec<_> = (0..32)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let replay = db
                    .call(move |conn| {
                        stock::reserve(conn, &format!("o-{i}"), &[(TEN_IN_STOCK, 1)], NOW)
                    })
                    .await;
                let level = db.call(|conn| stock::levels(conn)).await.unwrap();
                (replay.is_ok(), level)
            })
        })
        .collect();
    for read in reads {
        let (_, levels) = read.await.unwrap();
        let gps = levels
            .iter()
            .find(|l| l.product_id == TEN_IN_STOCK)
            .unwrap();
        assert_eq!((gps.stock, gps.reserved), (0, 10));
    }
    drop(db);

    // What the file says after the handle is gone.
    let conn = Connection::open(&path).unwrap();
    let held: i64 = conn
        .query_row(
            "SELECT SUM(quantity) FROM stock_reservations WHERE product_id = ?1",
            [TEN_IN_STOCK],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(held, 10);
}

#[tokio::test]
async fn an_in_memory_database_is_migrated_too() {
    let db = Db::open_in_memory().await.unwrap();
    let products = db.call(|conn| catalog::products(conn)).await.unwrap();
    assert_eq!(products.len(), 24);
}
