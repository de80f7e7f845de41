//! The order-fulfillment domain on the engine's public API.
//!
//! * [`shipping`] — `ShippingService`: ships with a simulated carrier (retried), cancels.
//! * [`session`] — `UserSession`, a virtual object per user: the basket and checkout, which
//!   records the order and submits its payment.
//! * [`order_payment`] — `OrderPayment`, a workflow per order: files the payment request and
//!   waits on an awakeable; paid starts fulfillment, declined puts the items back in the basket.
//! * [`payment`] — `PaymentGateway`, the payment-gateway simulator: pending requests, pay,
//!   decline, auto-pay.
//! * [`fulfillment`] — `OrderFulfillment`, a workflow per order: reserve stock, wait for the
//!   admin's approval (with a deadline), ship, wait for delivery; compensations in reverse order.
//! * [`db`] — the reference data and the domain's tables in SQLite; [`notify`] — live
//!   notifications.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use zeroapp_app::{App, AppConfig};
//! use zeroapp_engine::Engine;
//!
//! let app = App::open("./data".as_ref(), AppConfig::default()).await?;
//! let engine = app.register(Engine::builder()).open("./data").await?;
//! # Ok(())
//! # }
//! ```

pub mod check;
pub mod db;
pub mod error;
mod events;
pub mod folder;
pub mod fulfillment;
pub mod notify;
pub mod order_payment;
pub mod payment;
pub mod payment_signature;
mod queries;
pub mod session;
pub mod shipping;
pub mod status;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use zeroapp_engine::{Clock, Definition, EngineBuilder, HandlerError, SystemClock, TerminalError};

use crate::db::{Db, DbError};
use crate::notify::Notifier;

/// The SQLite file in the data folder.
pub const DATABASE_FILE: &str = "app.sqlite";

/// Settings of the domain.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The share of carrier calls that fail transiently (0.0 to 1.0).
    pub shipping_failure_rate: f64,
    /// How long an order waits for the admin's decision; then it is rejected.
    pub approval_deadline: Duration,
    /// How long a shipped order takes to be delivered.
    pub delivery_delay: Duration,
    /// Whether the payment simulator pays every request by itself.
    pub auto_pay: bool,
    /// Whether orders are approved without an admin (for load tests).
    pub auto_approve: bool,
    /// The largest quantity of one product in a basket.
    pub max_quantity: u32,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            shipping_failure_rate: 0.2,
            approval_deadline: Duration::from_secs(24 * 60 * 60),
            delivery_delay: Duration::from_secs(5),
            auto_pay: false,
            auto_approve: false,
            max_quantity: 99,
        }
    }
}

/// The domain: its database, its notifications, its settings. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub(crate) inner: Arc<AppInner>,
}

pub(crate) struct AppInner {
    db: Db,
    notifier: Notifier,
    config: AppConfig,
    auto_pay: AtomicBool,
    pub(crate) carrier: Arc<shipping::Carrier>,
    clock: Arc<dyn Clock>,
}

impl App {
    /// Opens (or creates) the domain's database in `dir`, applying migrations.
    pub async fn open(dir: &Path, config: AppConfig) -> Result<App, DbError> {
        Self::open_with_clock(dir, config, SystemClock).await
    }

    /// Like [`App::open`], with the timestamps it writes taken from `clock` — the engine's
    /// virtual clock in tests, so that a run from scratch writes the same rows.
    pub async fn open_with_clock(
        dir: &Path,
        config: AppConfig,
        clock: impl Clock,
    ) -> Result<App, DbError> {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Open {
            path: dir.to_owned(),
            message: e.to_string(),
        })?;
        let db = Db::open(&dir.join(DATABASE_FILE)).await?;
        Ok(App {
            inner: Arc::new(AppInner {
                db,
                notifier: Notifier::default(),
                auto_pay: AtomicBool::new(config.auto_pay),
                config,
                carrier: Arc::default(),
                clock: Arc::new(clock),
            }),
        })
    }

    /// Registers the domain's services, objects and workflow with the embedded engine.
    ///
    /// Every domain handler is ingress-private there: the storefront calls them in-process, so
    /// the engine's HTTP ingress refuses them (paying an order, approving one or filling
    /// someone's basket go through the storefront's authenticated routes only).
    pub fn register(&self, builder: EngineBuilder) -> EngineBuilder {
        self.definitions()
            .into_iter()
            .map(Definition::ingress_private)
            .fold(builder, |builder, definition| builder.register(definition))
    }

    /// The domain's services, objects and workflow, for any engine that serves definitions
    /// (the embedded one through [`App::register`], a Restate cluster through
    /// `zeroapp-restate`). They are public here: on a cluster the storefront calls them through
    /// the cluster's ingress, which the operator keeps on a private network
    /// (docs/scale-out.md).
    pub fn definitions(&self) -> Vec<Definition> {
        vec![
            shipping::service(self).into(),
            session::object(self).into(),
            payment::service(self).into(),
            order_payment::workflow(self).into(),
            fulfillment::workflow(self).into(),
        ]
    }

    /// Closes the database for a clean stop: calls already made finish, the write-ahead log is
    /// checkpointed into `app.sqlite`, and nothing is left beside it. Call it once the engine
    /// stopped running handlers; later database calls fail.
    pub async fn close(&self) -> Result<(), DbError> {
        self.inner.db.close().await
    }

    /// Records the data folder's identity in the database if it has none yet (see
    /// [`folder::identity`], which chose or read it).
    pub async fn record_identity(&self, identity: uuid::Uuid) -> Result<(), DbError> {
        let id = identity.to_string();
        self.inner
            .db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO folder_identity (id) SELECT ?1 \
                     WHERE NOT EXISTS (SELECT 1 FROM folder_identity)",
                    [&id],
                )?;
                Ok(())
            })
            .await
    }

    /// Writes a consistent copy of the database, taken while it serves, to `dest` (a new
    /// file): SQLite's `VACUUM INTO`, as of one transaction. Its size in bytes.
    pub async fn back_up_database(&self, dest: &Path) -> Result<u64, DbError> {
        let dest = dest.to_owned();
        self.inner
            .db
            .call(move |conn| {
                let path = dest.to_string_lossy().into_owned();
                conn.execute("VACUUM INTO ?1", [&path])?;
                Ok(std::fs::metadata(&dest).map_or(0, |m| m.len()))
            })
            .await
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Live notifications.
    pub fn notifier(&self) -> &Notifier {
        &self.inner.notifier
    }

    /// The settings the domain was opened with.
    pub fn config(&self) -> &AppConfig {
        &self.inner.config
    }

    /// Whether the payment simulator pays requests by itself.
    pub fn auto_pay(&self) -> bool {
        self.inner.auto_pay.load(Ordering::Relaxed)
    }

    /// Switches the payment simulator's auto-pay mode.
    pub fn set_auto_pay(&self, on: bool) {
        self.inner.auto_pay.store(on, Ordering::Relaxed);
    }

    /// Milliseconds since the epoch by the app's clock, for timestamps written inside `run`
    /// steps.
    pub(crate) fn now_ms(&self) -> i64 {
        i64::try_from(self.inner.clock.now_ms()).unwrap_or(i64::MAX)
    }
}

/// A database error inside a step: refusals by the data are terminal (with an HTTP-like code),
/// failures of the database are retried.
pub(crate) fn step_error(error: DbError) -> HandlerError {
    if error.is_terminal() {
        let code = match &error {
            DbError::NotFound { .. } => 404,
            DbError::OutOfStock { .. } | DbError::AlreadyDecided { .. } => 409,
            DbError::Invalid(_) => 400,
            _ => 500,
        };
        TerminalError::with_code(code, error.to_string()).into()
    } else {
        HandlerError::retryable(error.to_string())
    }
}
