//! The storefront under load, in this process on 127.0.0.1: `POST /api/cart/add` with a session
//! cookie per connection (64 shoppers), and one notification broadcast to 1,000 open
//! `/stream/notifications` subscribers.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeroapp_app::db::notifications::Notification;
use zeroapp_app::db::{DbError, auth};
use zeroapp_app::{App, AppConfig};
use zeroapp_engine::Engine;
use zeroapp_engine::http::{self, HttpLimits};
use zeroapp_web::server;
use zeroapp_web::shared::Shared;

use crate::harness::{Bench, Modes, ensure};
use crate::http_load::{HttpTarget, closed_loop_each};
use crate::load::{Sample, Window};
use crate::report::{ms, verdict};
use crate::stats::{Latencies, median, median_duration};

/// How the bench runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Warm-up and measurement of the cart point.
    pub window: Window,
    /// Repetitions; figures are medians over them.
    pub repetitions: usize,
    /// Shoppers adding to their carts at once (one connection and session each).
    pub shoppers: usize,
    /// Open notification streams.
    pub subscribers: usize,
    /// Broadcasts per repetition, 100 ms apart.
    pub broadcasts: usize,
}

impl Modes for Settings {
    /// The real run: 64 shoppers for 3 s, 1,000 subscribers and 20 broadcasts, 5 times.
    fn full() -> Self {
        Self {
            window: Window::FULL,
            repetitions: 5,
            shoppers: 64,
            subscribers: 1000,
            broadcasts: 20,
        }
    }

    /// A few hundred milliseconds with 8 shoppers and 20 subscribers: proves it runs.
    fn quick() -> Self {
        Self {
            window: Window::quick(Duration::from_millis(150)),
            repetitions: 1,
            shoppers: 8,
            subscribers: 20,
            broadcasts: 3,
        }
    }
}

/// A storefront on a fresh data folder, serving on 127.0.0.1, with `shoppers` users that each
/// have a session.
struct Shop {
    base_url: String,
    addr: std::net::SocketAddr,
    app: App,
    engine: Engine,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    cookies: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Shop {
    async fn start(shoppers: usize, admin_sessions: usize) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let config = AppConfig {
            // The bench measures the request path, not the basket's limits.
            max_quantity: u32::MAX / 2,
            ..AppConfig::default()
        };
        let app = App::open(dir.path(), config)
            .await
            .map_err(|e| e.to_string())?;
        let sessions = app
            .db()
            .call(move |c| {
                c.execute("UPDATE products SET stock = 1000000000", [])?;
                let mut cookies = Vec::new();
                for n in 0..shoppers {
                    let user = format!("shopper{n:03}");
                    c.execute(
                        "INSERT INTO users (id, name, email, is_admin) VALUES (?1, ?1, ?1 || '@example.com', 0)",
                        [&user],
                    )?;
                    let session = auth::create_session(c, &user, 3_600_000, now_ms())?;
                    cookies.push(format!("zeroapp_session={}", session.token));
                }
                for _ in 0..admin_sessions {
                    let session = auth::create_session(c, "admin", 3_600_000, now_ms())?;
                    cookies.push(format!("zeroapp_session={}", session.token));
                }
                Ok::<_, DbError>(cookies)
            })
            .await
            .map_err(|e| e.to_string())?;
        let engine = app
            .register(Engine::builder())
            .open(dir.path())
            .await
            .map_err(|e| e.to_string())?;
        let limits = HttpLimits {
            max_connections: 4096,
            ..HttpLimits::default()
        };
        let routes = server::routes(Shared {
            app: app.clone(),
            client: zeroapp_web::engine::EngineClient::Embedded(engine.client()),
            limits: limits.clone(),
            callback_secret: vec![0; 32],
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(http::serve(listener, routes, limits, stop.clone()));
        Ok(Self {
            base_url: format!("http://{addr}"),
            addr,
            app,
            engine,
            stop,
            task,
            cookies: sessions,
            _dir: dir,
        })
    }

    async fn stop(self) -> Result<(), String> {
        self.stop.cancel();
        self.task
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        self.engine.shutdown().await;
        Ok(())
    }
}

fn now_ms() -> i64 {
    use zeroapp_engine::Clock;
    i64::try_from(zeroapp_engine::SystemClock.now_ms()).unwrap_or(i64::MAX)
}

/// One repetition's figures.
#[derive(Debug, Clone)]
pub struct Repetition {
    /// The cart point.
    pub cart: Sample,
    /// Publish-to-receive latency of every broadcast at every subscriber.
    pub broadcast: Latencies,
    /// Deliveries that never arrived within 5 s.
    pub missed: usize,
}

/// Medians over the repetitions.
#[derive(Debug, Clone)]
pub struct Report {
    /// How it ran.
    pub settings: Settings,
    /// `POST /api/cart/add` per second.
    pub cart_per_s: f64,
    /// Its p50 and p99.
    pub cart_p50: Duration,
    /// See `cart_p50`.
    pub cart_p99: Duration,
    /// Non-200 answers, summed.
    pub cart_errors: u64,
    /// Broadcast delivery p50 and p99.
    pub broadcast_p50: Duration,
    /// See `broadcast_p50`.
    pub broadcast_p99: Duration,
    /// Deliveries missed, summed.
    pub missed: usize,
}

/// The `storefront` bench.
pub struct Storefront;

impl Bench for Storefront {
    const NAME: &'static str = "storefront";
    type Settings = Settings;
    type Report = Report;

    async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
        run(settings, log).await
    }

    /// Cart adds measured without an error, and every subscriber got every broadcast.
    fn check(_: &Settings, report: &Report) -> Result<(), String> {
        ensure(report.cart_per_s > 0.0 && report.cart_errors == 0, || {
            format!("cart adds: {report:?}")
        })?;
        ensure(
            report.missed == 0 && report.broadcast_p50 <= report.broadcast_p99,
            || format!("broadcast: {report:?}"),
        )
    }

    fn summary(report: &Report) -> String {
        section(report, &crate::report::today(), &crate::report::machine())
    }

    fn section(report: &Report, date: &str, machine: &str) -> String {
        section(report, date, machine)
    }
}

/// Runs the bench.
pub async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
    let mut reps = Vec::new();
    for repetition in 1..=settings.repetitions {
        let rep = one(settings).await?;
        log(format!(
            "[{repetition}/{}] cart add: {:.0}/s p50 {} p99 {} ({} errors); broadcast to {}: p50 {} p99 {} ({} missed)",
            settings.repetitions,
            rep.cart.per_second(),
            ms(rep.cart.latencies.p50()),
            ms(rep.cart.latencies.p99()),
            rep.cart.errors,
            settings.subscribers,
            ms(rep.broadcast.p50()),
            ms(rep.broadcast.p99()),
            rep.missed,
        ));
        reps.push(rep);
    }
    Ok(Report {
        settings: settings.clone(),
        cart_per_s: median(reps.iter().map(|r| r.cart.per_second())),
        cart_p50: median_duration(reps.iter().map(|r| r.cart.latencies.p50())),
        cart_p99: median_duration(reps.iter().map(|r| r.cart.latencies.p99())),
        cart_errors: reps.iter().map(|r| r.cart.errors).sum(),
        broadcast_p50: median_duration(reps.iter().map(|r| r.broadcast.p50())),
        broadcast_p99: median_duration(reps.iter().map(|r| r.broadcast.p99())),
        missed: reps.iter().map(|r| r.missed).sum(),
    })
}

async fn one(settings: &Settings) -> Result<Repetition, String> {
    let store = Shop::start(settings.shoppers, settings.subscribers).await?;
    let targets: Vec<HttpTarget> = store.cookies[..settings.shoppers]
        .iter()
        .enumerate()
        .map(|(n, cookie)| {
            let product = n % 24 + 1;
            HttpTarget::post_json(
                store.base_url.clone(),
                "/api/cart/add",
                format!(r#"{{"product_id": {product}, "quantity": 1}}"#),
            )
            .header("cookie", cookie.clone())
        })
        .collect();
    let cart = closed_loop_each(&targets, settings.window).await?;
    let (broadcast, missed) = broadcast(&store, settings).await?;
    store.stop().await?;
    Ok(Repetition {
        cart,
        broadcast,
        missed,
    })
}

/// Opens the admins' notification stream `subscribers` times, then publishes `broadcasts`
/// notifications 100 ms apart and times each arrival at each subscriber.
async fn broadcast(store: &Shop, settings: &Settings) -> Result<(Latencies, usize), String> {
    let cookies = store.cookies[settings.shoppers..].to_vec();
    let mut readers = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(cookies.len());
    let published: std::sync::Arc<std::sync::Mutex<Vec<Instant>>> = std::sync::Arc::default();
    for cookie in cookies {
        let mut stream = TcpStream::connect(store.addr)
            .await
            .map_err(|e| format!("cannot open a stream: {e}"))?;
        let request = format!(
            "GET /stream/notifications HTTP/1.1\r\nhost: {}\r\ncookie: {cookie}\r\n\r\n",
            store.addr
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let ready = ready_tx.clone();
        let published = published.clone();
        let broadcasts = settings.broadcasts;
        readers.push(tokio::spawn(async move {
            read_broadcasts(stream, ready, published, broadcasts).await
        }));
    }
    drop(ready_tx);
    for _ in 0..readers.len() {
        if ready_rx.recv().await.is_none() {
            return Err("a subscriber's stream ended before its snapshot".into());
        }
    }
    settle().await;
    for n in 0..settings.broadcasts {
        let note = Notification {
            id: i64::try_from(n).unwrap_or(0) + 1_000_000,
            user_id: None,
            order_id: format!("bench-{n}"),
            kind: "bench".into(),
            message: format!("broadcast {n}"),
            at_ms: now_ms(),
            read: false,
            event_key: format!("bench/{n}"),
        };
        if let Ok(mut times) = published.lock() {
            times.push(Instant::now());
        }
        store.app.notifier().publish(&note);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut latencies = Vec::new();
    let mut missed = 0;
    for reader in readers {
        match reader.await {
            Ok(arrivals) => {
                missed += settings.broadcasts - arrivals.len();
                latencies.extend(arrivals);
            }
            Err(e) => return Err(format!("a subscriber failed: {e}")),
        }
    }
    Ok((Latencies::new(latencies), missed))
}

/// Lets the server settle after a thousand connections before the first broadcast.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Reads one stream: says when its snapshot arrived, then times each broadcast `broadcast N`
/// against the moment it was published. Gives up 5 s after the last expected one.
async fn read_broadcasts(
    mut stream: TcpStream,
    ready: tokio::sync::mpsc::Sender<()>,
    published: std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
    broadcasts: usize,
) -> Vec<Duration> {
    let mut text = String::new();
    let mut buf = vec![0_u8; 16 * 1024];
    let mut signalled = false;
    let mut next = 0;
    let mut arrivals = Vec::new();
    while next < broadcasts {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        let n = match read {
            Ok(Ok(n)) if n > 0 => n,
            _ => break,
        };
        let now = Instant::now();
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if !signalled && text.contains("event: snapshot") {
            signalled = true;
            let _ = ready.send(()).await;
        }
        while next < broadcasts && text.contains(&format!("broadcast {next}\"")) {
            let sent = published.lock().ok().and_then(|t| t.get(next).copied());
            if let Some(sent) = sent {
                arrivals.push(now.saturating_duration_since(sent));
            }
            next += 1;
        }
        if text.len() > 1 << 20 {
            text.drain(..text.len() / 2);
        }
    }
    arrivals
}

/// The section of docs/benchmarks.md.
pub fn section(report: &Report, date: &str, machine: &str) -> String {
    let s = &report.settings;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## storefront: cart adds and a notification broadcast\n"
    );
    let _ = writeln!(
        out,
        "Command: `{}` (a quick check: add `-- --test`).\n\
         Run on {date}: {machine}. The storefront (`zeroapp_web::server::routes` on `http::serve`) \
         runs in the bench's process on 127.0.0.1 with a fresh data folder per repetition; every \
         figure is the median of {} repetitions.\n",
        crate::harness::command::<Storefront>(),
        s.repetitions
    );
    let _ = writeln!(
        out,
        "* **Cart add**: {} shoppers, each with its own session cookie and keep-alive connection, \
         send `POST /api/cart/add` one after another for {:.1} s after {:.1} s of warm-up. Each is \
         an exclusive `UserSession/{{user}}/add_item` invocation (a catalog lookup in SQLite inside \
         a `run` step, a state write, the outcome: journaled, logged and synced) and answers the priced \
         cart.",
        s.shoppers,
        s.window.measure.as_secs_f64(),
        s.window.warmup.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "* **Broadcast**: {} admin sessions hold `GET /stream/notifications` open; {} notifications \
         are published to the admins' subscription 100 ms apart; latency is from the publish to \
         the moment each subscriber's socket read the event.\n",
        s.subscribers, s.broadcasts
    );
    let _ = writeln!(
        out,
        "| point | figure | p50 | p99 | errors | target | verdict |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---|");
    let _ = writeln!(
        out,
        "| cart add, {} shoppers | {:.0} requests/s | {} | {} | {} | ≥ 10,000/s, p99 ≤ 20 ms | {} |",
        s.shoppers,
        report.cart_per_s,
        ms(report.cart_p50),
        ms(report.cart_p99),
        report.cart_errors,
        verdict(report.cart_per_s >= 10_000.0 && report.cart_p99 <= Duration::from_millis(20))
    );
    let _ = writeln!(
        out,
        "| broadcast to {} subscribers | {} deliveries | {} | {} | {} missed | p99 ≤ 100 ms | {} |",
        s.subscribers,
        s.subscribers * s.broadcasts,
        ms(report.broadcast_p50),
        ms(report.broadcast_p99),
        report.missed,
        verdict(report.missed == 0 && report.broadcast_p99 <= Duration::from_millis(100))
    );
    out
}
