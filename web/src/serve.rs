//! `zeroapp serve`: the storefront with the engine, its ingress and admin API — or with the
//! handlers served to a Restate cluster — until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use zeroapp_app::App;
use zeroapp_engine::Engine;
use zeroapp_engine::http::{self, BearerToken, HttpLimits, Routes};

use zeroapp_restate::{Deployment, RestateClient, Retention};

use crate::cli::ServeArgs;
use crate::engine::EngineClient;
use crate::{server, tokens};

/// Opens the engine (or reaches the Restate cluster), serves until a stop signal, then shuts
/// down in order: stop accepting, let requests in flight finish (bounded), flush the engine's
/// writer.
pub async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    init_logging(&args.log_level);
    let handlers_on_restate = args.restate_admin.is_some() && args.restate_ingress.is_some();
    // Before anything is opened: a listener others can reach without a token stops the start.
    let tokens = if handlers_on_restate {
        Tokens::default()
    } else {
        Tokens::load(&args)?
    };
    // Before either store is opened for writing (which would create a missing one, and seed a
    // missing app.sqlite): both must belong to this folder.
    let identity = zeroapp_app::folder::identity(&args.data_dir, !handlers_on_restate).await?;
    // Read (or created) before anything starts: a bad key file stops the start, not the first
    // payment callback.
    let callback_secret = zeroapp_app::payment_signature::load_or_create_secret(&args.data_dir)
        .map_err(|e| format!("cannot read or create the payment callback key: {e}"))?;
    let app = App::open(&args.data_dir, args.app_config())
        .await
        .map_err(|e| {
            format!(
                "cannot open the app's database in {}: {e}",
                args.data_dir.display()
            )
        })?;
    app.record_identity(identity)
        .await
        .map_err(|e| format!("cannot record the data folder's identity: {e}"))?;
    let limits = HttpLimits {
        max_body_bytes: args.max_body_bytes,
        max_connections: args.max_connections,
        shutdown_grace: args.shutdown_grace,
        ..HttpLimits::default()
    };
    let stop = CancellationToken::new();
    let handlers = match (&args.restate_admin, &args.restate_ingress) {
        (Some(admin), Some(ingress)) => on_restate(&args, &app, admin, ingress, &stop).await?,
        _ => embedded(&args, &app, identity, &limits, tokens, &stop).await?,
    };
    let storefront = server::routes(crate::shared::Shared {
        app: app.clone(),
        client: handlers.client,
        limits: limits.clone(),
        callback_secret,
    });
    let storefront = listen("storefront", args.addr, storefront, &limits, &stop).await?;
    println!(
        "zeroapp: serving data folder {} (stop with Ctrl-C or SIGTERM)",
        args.data_dir.display()
    );

    // A stop signal, or the engine's writer dying (the storage layer failed on a damaged
    // file): then everything that writes fails, so the process ends non-zero for a supervisor
    // to restart it, and the start-up reports the damage.
    let engine_failed = async {
        match &handlers.engine {
            Some(engine) => Some(engine.failed().await),
            None => std::future::pending().await,
        }
    };
    let failure = tokio::select! {
        signal = wait_for_stop_signal() => {
            signal?;
            None
        }
        reason = engine_failed => reason,
    };
    if let Some(reason) = &failure {
        tracing::error!(%reason, "the engine can write nothing more: stopping");
    }
    tracing::info!(
        "stopping: no new connections; requests in flight get {:?}",
        limits.shutdown_grace
    );
    stop.cancel();
    let mut servers = handlers.servers;
    servers.push(storefront);
    for server in servers {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "server failed"),
            Err(error) => tracing::error!(%error, "server task failed"),
        }
    }
    if let Some(engine) = handlers.engine {
        engine.shutdown().await;
    }
    // Last, once no handler runs: app.sqlite alone then holds every committed row.
    if let Err(error) = app.close().await {
        tracing::error!(%error, "closing the app's database failed");
    }
    if let Some(reason) = failure {
        return Err(format!(
            "stopped because the engine's writer died ({reason}); start the server again: it \
             checks the data file as it opens it (see also `zeroapp check`)"
        )
        .into());
    }
    println!("zeroapp: stopped");
    Ok(())
}

/// What runs the handlers, as the storefront sees it.
struct Handlers {
    client: EngineClient,
    /// The embedded engine, to shut down last; `None` on a cluster.
    engine: Option<Engine>,
    /// Listeners to wait for at shutdown.
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The bearer tokens of the ingress and the admin API, if they have any.
#[derive(Default)]
struct Tokens {
    ingress: Option<BearerToken>,
    admin: Option<BearerToken>,
}

impl Tokens {
    /// Reads both (see `tokens`), and refuses a listener others can reach without one, or one
    /// token for both listeners.
    fn load(args: &ServeArgs) -> Result<Self, String> {
        let ingress = tokens::Source::ingress(args.ingress_token.as_deref());
        let admin = tokens::Source::admin(args.admin_token.as_deref());
        let loaded = Self {
            ingress: tokens::load(&ingress, &args.data_dir)?,
            admin: tokens::load(&admin, &args.data_dir)?,
        };
        tokens::check_exposure(&ingress, args.ingress_addr, loaded.ingress.as_ref())?;
        tokens::check_exposure(&admin, args.admin_addr, loaded.admin.as_ref())?;
        if args.public_handlers && loaded.ingress.is_none() {
            return Err(
                "--public-handlers serves the domain's handlers on the ingress: give the \
                        ingress a token (--ingress-token or a file ingress.token in the data \
                        folder), so that only who holds it can call them"
                    .into(),
            );
        }
        if let (Some(a), Some(b)) = (&loaded.ingress, &loaded.admin) {
            if a.same_as(b) {
                return Err(
                    "the ingress and the admin API need distinct tokens: whoever may \
                            call handlers must not also cancel, kill and purge invocations"
                        .into(),
                );
            }
        }
        Ok(loaded)
    }
}

/// The embedded engine in the data folder, with its ingress and admin API.
async fn embedded(
    args: &ServeArgs,
    app: &App,
    identity: uuid::Uuid,
    limits: &HttpLimits,
    tokens: Tokens,
    stop: &CancellationToken,
) -> Result<Handlers, Box<dyn std::error::Error>> {
    let builder = Engine::builder().folder_identity(identity);
    let builder = if args.public_handlers {
        app.definitions()
            .into_iter()
            .fold(builder, |builder, definition| builder.register(definition))
    } else {
        app.register(builder)
    };
    let engine = builder
        .open(&args.data_dir)
        .await
        .map_err(|e| format!("cannot open the engine in {}: {e}", args.data_dir.display()))?;
    let mut ingress = http::ingress(&engine, limits);
    if let Some(token) = tokens.ingress {
        ingress = http::require_bearer(ingress, token, &["/restate/health"], Some("ingress"));
    }
    let ingress = listen("ingress", args.ingress_addr, ingress, limits, stop).await?;
    let mut admin = crate::backup::with_backup_route(
        http::admin(&engine),
        engine.client(),
        app.clone(),
        args.data_dir.clone(),
    );
    if let Some(token) = tokens.admin {
        admin = http::require_bearer(admin, token, &["/health"], None);
    }
    let admin = listen("admin", args.admin_addr, admin, limits, stop).await?;
    Ok(Handlers {
        client: EngineClient::Embedded(engine.client()),
        engine: Some(engine),
        servers: vec![ingress, admin],
    })
}

/// How long a finished workflow's state stays on the cluster: an order page reads its progress
/// from there (Restate's default is one day).
const ORDER_RETENTION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How long start-up keeps trying to register with a cluster that does not answer yet.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);

/// The handlers served as a deployment of a Restate cluster, registered with its admin API.
async fn on_restate(
    args: &ServeArgs,
    app: &App,
    admin: &str,
    ingress: &str,
    stop: &CancellationToken,
) -> Result<Handlers, Box<dyn std::error::Error>> {
    let client = RestateClient::new(ingress, admin);
    let deployment = app
        .definitions()
        .into_iter()
        .fold(Deployment::new(), |d, definition| d.register(definition))
        .retention(Retention {
            workflow: ORDER_RETENTION,
            ..Retention::default()
        });
    let addr = args.restate_deployment_addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for the deployment on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let url = args
        .restate_deployment_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}/"));
    let serving = tokio::spawn(deployment.serve(listener, stop.clone().cancelled_owned()));
    let started = std::time::Instant::now();
    let services = loop {
        match client.register_deployment(&url).await {
            Ok(services) => break services,
            Err(error) if started.elapsed() < REGISTER_TIMEOUT => {
                tracing::warn!(%error, "registering with the Restate cluster; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => {
                return Err(format!("cannot register {url} with {admin}: {error}").into());
            }
        }
    };
    println!(
        "zeroapp: handlers served at {url} to the Restate cluster at {admin} ({}); storefront \
         calls through {ingress}",
        services.join(", ")
    );
    let serving = tokio::spawn(async move {
        match serving.await {
            Ok(result) => result.map_err(std::io::Error::other),
            Err(error) => Err(std::io::Error::other(error)),
        }
    });
    Ok(Handlers {
        client: EngineClient::Restate(Arc::new(client)),
        engine: None,
        servers: vec![serving],
    })
}

/// Binds `addr` and serves `routes` there in the background until `stop`.
async fn listen(
    name: &'static str,
    addr: SocketAddr,
    routes: Routes,
    limits: &HttpLimits,
    stop: &CancellationToken,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for the {name} on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    println!("zeroapp: {name} listening on http://{bound}");
    tracing::info!(%bound, "{name} listening");
    Ok(tokio::spawn(http::serve(
        listener,
        routes,
        limits.clone(),
        stop.clone(),
    )))
}

async fn wait_for_stop_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a terminal: a log file or a supervisor's journal gets plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
