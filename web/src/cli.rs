//! The command line: flags, each with a matching environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// ZeroApp: an order-fulfillment storefront on an embedded durable-execution engine.
#[derive(Debug, Parser)]
#[command(name = "zeroapp", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The flags of `serve`, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: the storefront, the Restate-compatible ingress and the admin API (or,
    /// with --restate-admin and --restate-ingress, the storefront with its handlers on a Restate
    /// cluster).
    Serve(Box<ServeArgs>),
    /// Look into a data folder that no server is using: list invocations, show a journal.
    Inspect(InspectArgs),
    /// Verify a data folder that no server is using: both stores readable and intact, and in
    /// agreement. Exit 0: sound; 1: problems found (listed); 2: the check could not run.
    Check(CheckArgs),
    /// Ask a running server for a consistent copy of its data folder, into a new folder; a
    /// server started on that folder answers as the original did at the backup's moment.
    Backup(BackupArgs),
    /// A running server's invocations, through its admin API: list, show (with the journal),
    /// cancel, kill, purge. Exit 0: done; 1: the server refused (unknown, finished…); 2: it
    /// could not be asked.
    Invocations(InvocationsArgs),
    /// Resolve or reject an awakeable of a running server, through its ingress.
    Awakeables(AwakeablesArgs),
    /// A running server's counts: invocations by status, timers, waiting attaches, commits.
    Metrics(MetricsArgs),
    /// Before deploying this build: replay the journals of a data folder no server is using
    /// (or of a file `--export` wrote) against this build's handlers, without side effects, and
    /// list every invocation whose journal the new code would no longer match. Exit 0: all
    /// replay; 1: some would break (listed); 2: the check could not run.
    ReplayCheck(ReplayCheckArgs),
}

/// How to reach a running server's admin API.
#[derive(Debug, Args)]
pub struct AdminConnection {
    /// The running server's admin API.
    #[arg(
        long,
        global = true,
        env = "ZEROAPP_ADMIN_ADDR",
        default_value = "127.0.0.1:9070"
    )]
    pub admin_addr: SocketAddr,
    /// The admin API's bearer token, if it requires one; else the file `admin.token` in
    /// `--data-dir`, if there is one.
    #[arg(
        long,
        global = true,
        env = "ZEROAPP_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// The server's data folder, where `admin.token` may be.
    #[arg(long, global = true, env = "ZEROAPP_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

/// Flags of `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new folder to write (it must not exist); relative to the current folder.
    pub dest: PathBuf,
    #[command(flatten)]
    pub admin: AdminConnection,
}

/// `invocations` and its subcommands.
#[derive(Debug, Args)]
pub struct InvocationsArgs {
    #[command(subcommand)]
    pub action: InvocationsAction,
    #[command(flatten)]
    pub admin: AdminConnection,
    /// Print the admin API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What to do with invocations.
#[derive(Debug, Subcommand)]
pub enum InvocationsAction {
    /// List invocations, oldest first.
    List {
        /// Only this status (pending, scheduled, running, backing-off, suspended, completed,
        /// failed).
        #[arg(long)]
        status: Option<String>,
        /// Only this service, object or workflow.
        #[arg(long)]
        service: Option<String>,
        /// Only this object or workflow key.
        #[arg(long)]
        key: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one invocation and its journal.
    Show {
        /// The invocation id (`inv_…`).
        id: String,
    },
    /// Cancel an invocation: its next await fails with "cancelled", compensations run.
    Cancel {
        /// The invocation id.
        id: String,
    },
    /// Kill an invocation: stopped at once, no compensations.
    Kill {
        /// The invocation id.
        id: String,
    },
    /// Purge a finished invocation now.
    Purge {
        /// The invocation id.
        id: String,
    },
}

/// `awakeables` and its subcommands.
#[derive(Debug, Args)]
pub struct AwakeablesArgs {
    #[command(subcommand)]
    pub action: AwakeablesAction,
    /// The running server's ingress.
    #[arg(
        long,
        global = true,
        env = "ZEROAPP_INGRESS_ADDR",
        default_value = "127.0.0.1:9080"
    )]
    pub ingress_addr: SocketAddr,
    /// The ingress's bearer token, if it requires one; else the file `ingress.token` in
    /// `--data-dir`, if there is one.
    #[arg(
        long,
        global = true,
        env = "ZEROAPP_INGRESS_TOKEN",
        hide_env_values = true
    )]
    pub ingress_token: Option<String>,
    /// The server's data folder, where `ingress.token` may be.
    #[arg(long, global = true, env = "ZEROAPP_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

/// What to do with an awakeable.
#[derive(Debug, Subcommand)]
pub enum AwakeablesAction {
    /// Resolve it: the handler awaiting it gets the value.
    Resolve {
        /// The awakeable id (`awk_…`).
        id: String,
        /// The value, as JSON (`null` when omitted).
        value: Option<String>,
    },
    /// Reject it: the handler's await fails with this reason.
    Reject {
        /// The awakeable id (`awk_…`).
        id: String,
        /// Why.
        reason: String,
    },
}

/// Flags of `metrics`.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    #[command(flatten)]
    pub admin: AdminConnection,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The data folder to verify.
    #[arg(long, env = "ZEROAPP_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// The folder's handlers run on a Restate cluster: it holds no engine file, and its orders
    /// are not compared with one.
    #[arg(long)]
    pub without_engine: bool,
}

/// Flags of `replay-check`.
#[derive(Debug, Args)]
pub struct ReplayCheckArgs {
    /// The data folder whose journals to replay (stopped, or a copy `zeroapp backup` made).
    #[arg(long, env = "ZEROAPP_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Replay the journals in this file (written by `--export`) instead of a folder's.
    #[arg(long, conflicts_with = "export")]
    pub from: Option<PathBuf>,
    /// Write the folder's journals to this file (JSON) instead of checking them: to check them
    /// with the next build on another machine.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Besides every unfinished invocation, those finished within this long (`24h`, `30m`).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub finished_within: std::time::Duration,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The data folder: the engine's journal lives here.
    #[arg(long, env = "ZEROAPP_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Where the storefront listens.
    #[arg(long, env = "ZEROAPP_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Where the Restate-compatible HTTP ingress listens.
    #[arg(long, env = "ZEROAPP_INGRESS_ADDR", default_value = "127.0.0.1:9080")]
    pub ingress_addr: SocketAddr,
    /// Where the admin API (invocations, journals, cancel/kill/purge, /metrics) listens.
    #[arg(long, env = "ZEROAPP_ADMIN_ADDR", default_value = "127.0.0.1:9070")]
    pub admin_addr: SocketAddr,
    /// The bearer token the ingress requires (at least 16 visible characters); else the file
    /// `ingress.token` in the data folder, if there is one. Without a token the ingress may
    /// only listen on a loopback address.
    #[arg(long, env = "ZEROAPP_INGRESS_TOKEN", hide_env_values = true)]
    pub ingress_token: Option<String>,
    /// The bearer token the admin API requires (distinct from the ingress's); else the file
    /// `admin.token` in the data folder, if there is one. Without a token the admin API may
    /// only listen on a loopback address.
    #[arg(long, env = "ZEROAPP_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Serve the domain's handlers on the ingress too (for integrations that call them
    /// directly); they are private otherwise. Needs an ingress token.
    #[arg(long, env = "ZEROAPP_PUBLIC_HANDLERS")]
    pub public_handlers: bool,
    /// Log filter when RUST_LOG is not set: error, warn, info, debug, trace, or directives
    /// such as `info,zeroapp_engine=debug`.
    #[arg(long, env = "ZEROAPP_LOG", default_value = "info")]
    pub log_level: String,
    /// Request bodies larger than this many bytes are refused with 413.
    #[arg(long, env = "ZEROAPP_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Open connections allowed per listener; more are answered 503.
    #[arg(long, env = "ZEROAPP_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// How long requests in flight may take to finish at shutdown (e.g. 10s, 500ms).
    #[arg(long, env = "ZEROAPP_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// The payment simulator pays every request by itself.
    #[arg(long, env = "ZEROAPP_AUTO_PAY")]
    pub auto_pay: bool,
    /// Orders are approved without an admin (for load tests).
    #[arg(long, env = "ZEROAPP_AUTO_APPROVE")]
    pub auto_approve: bool,
    /// How long an order waits for an admin's decision before it is rejected.
    #[arg(long, env = "ZEROAPP_APPROVAL_DEADLINE", default_value = "24h", value_parser = humantime::parse_duration)]
    pub approval_deadline: Duration,
    /// How long a shipped order takes to be delivered.
    #[arg(long, env = "ZEROAPP_DELIVERY_DELAY", default_value = "5s", value_parser = humantime::parse_duration)]
    pub delivery_delay: Duration,
    /// The share of calls to the simulated carrier that fail transiently (0 to 1).
    #[arg(long, env = "ZEROAPP_SHIPPING_FAILURE_RATE", default_value_t = 0.2)]
    pub shipping_failure_rate: f64,
    /// Run the handlers on a Restate cluster instead of the embedded engine: the URL of the
    /// cluster's admin API (any node's), where this process registers its deployment
    /// (docs/scale-out.md).
    #[arg(long, env = "ZEROAPP_RESTATE_ADMIN", requires = "restate_ingress")]
    pub restate_admin: Option<String>,
    /// With --restate-admin: the URL of the cluster's ingress (any node's), through which the
    /// storefront calls the handlers.
    #[arg(long, env = "ZEROAPP_RESTATE_INGRESS", requires = "restate_admin")]
    pub restate_ingress: Option<String>,
    /// With --restate-admin: where the deployment (the handlers, called by the cluster over
    /// HTTP/2) listens.
    #[arg(
        long,
        env = "ZEROAPP_RESTATE_DEPLOYMENT_ADDR",
        default_value = "127.0.0.1:9081"
    )]
    pub restate_deployment_addr: SocketAddr,
    /// With --restate-admin: the URL at which the cluster reaches the deployment (default:
    /// http:// and the address it listens on).
    #[arg(long, env = "ZEROAPP_RESTATE_DEPLOYMENT_URL")]
    pub restate_deployment_url: Option<String>,
}

impl ServeArgs {
    /// The domain's settings from these flags.
    pub fn app_config(&self) -> zeroapp_app::AppConfig {
        zeroapp_app::AppConfig {
            shipping_failure_rate: self.shipping_failure_rate.clamp(0.0, 1.0),
            approval_deadline: self.approval_deadline,
            delivery_delay: self.delivery_delay,
            auto_pay: self.auto_pay,
            auto_approve: self.auto_approve,
            ..zeroapp_app::AppConfig::default()
        }
    }
}

/// Flags of `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The data folder to look into.
    #[arg(long, env = "ZEROAPP_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Show this invocation and its journal instead of the list.
    pub invocation: Option<String>,
    /// List only invocations with this status (pending, scheduled, running, backing-off,
    /// suspended, completed, failed).
    #[arg(long)]
    pub status: Option<String>,
    /// List only invocations of this service, object or workflow.
    #[arg(long)]
    pub service: Option<String>,
    /// List at most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print JSON (the admin API's shapes) instead of a table.
    #[arg(long)]
    pub json: bool,
}
