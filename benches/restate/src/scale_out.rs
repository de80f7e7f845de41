//! The `scale_out` bench: the same ZeroApp handlers on the embedded engine and on Restate, in
//! one run. Three sides are measured at every point (workload × callers), over the same HTTP
//! requests on the same paths, with the `restate` bench's workloads and load generator:
//!
//! * **embedded**: the engine's ingress in a child process (`zeroapp-bench-server`, as in the
//!   `restate` bench).
//! * **Restate, 1 node**: the bench's handlers ([`services::definitions`], the very definitions
//!   `zeroapp-bench-server` registers with its engine) served by
//!   [`zeroapp_restate::Deployment`] to one `restate-server` node ([`Cluster::single`]), driven
//!   through that node's ingress.
//! * **Restate, 3 nodes**: the same deployment registered with a 3-node cluster
//!   ([`Cluster::start`]), the callers spread over the three nodes' ingresses (caller `i` on
//!   node `i mod 3`).
//!
//! The deployment runs in the bench's own process (a tokio task serving a listener on
//! 127.0.0.1; both clusters call the same one), as `zeroapp serve --restate-*` serves its
//! deployment next to its storefront: its work per journal entry is small next to a
//! `restate-server`'s, and every process shares the machine's cores either way.
//!
//! All servers run for the whole bench; after a settling run of every side (unmeasured: a
//! Restate node's first seconds are several times slower than its steady state), in each
//! repetition the three sides of a point run back to back, the side that goes first rotating
//! from one repetition to the next. Quick mode
//! (tests, `-- --test`) measures all three sides briefly, once; it needs `npm` the first time
//! (see [`zeroapp_restate::local`]).

use std::fmt::Write as _;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeroapp_restate::local::{Cluster, PARTITIONS, REPLICATION, RESTATE_VERSION};
use zeroapp_restate::{Deployment, DeploymentError};

use crate::comparison::{
    Column, Line, Measured, Ratios, Workload, http_sample, points, ratio, repeat_points,
    workload_table,
};
use crate::server::ZeroAppServer;
use crate::services;
use zeroapp_benches::harness::{Bench, Modes, ensure};
use zeroapp_benches::load::Window;
use zeroapp_benches::report::{callers, ms};

/// The workloads: W1 (three `run` steps) and W3 (an awakeable round trip in four requests).
pub const WORKLOADS: [Workload; 2] = [Workload::ThreeSteps, Workload::Awakeable];
/// The nodes of the multi-node side.
pub const CLUSTER_NODES: usize = 3;
/// The callers of the settling run (see [`Settings::settle`]).
pub const SETTLE_CALLERS: usize = 16;
/// How long the deployment may take to stop once the clusters are gone.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How the bench runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Warm-up and measurement of each point.
    pub window: Window,
    /// Before the first point, every side runs every workload for this long at
    /// [`SETTLE_CALLERS`] callers, unmeasured: the servers' first seconds after start-up are
    /// slower than their steady state.
    pub settle: Duration,
    /// Repetitions of every point; figures are medians over them.
    pub repetitions: usize,
    /// Numbers of concurrent callers (each with one keep-alive HTTP connection).
    pub concurrencies: Vec<usize>,
    /// The workloads, in order.
    pub workloads: Vec<Workload>,
}

impl Modes for Settings {
    /// The real run: 4 s per point after 1 s of warm-up, 3 repetitions, 1, 16 and 64 callers,
    /// after 2 s of settling per side and workload.
    fn full() -> Self {
        Self {
            window: Window {
                warmup: Duration::from_secs(1),
                measure: Duration::from_secs(4),
            },
            settle: Duration::from_secs(2),
            repetitions: 3,
            concurrencies: vec![1, 16, 64],
            workloads: WORKLOADS.to_vec(),
        }
    }

    /// About 150 ms per point, once, at the same points.
    fn quick() -> Self {
        Self {
            window: Window::quick(Duration::from_millis(150)),
            settle: Duration::from_millis(200),
            repetitions: 1,
            ..Self::full()
        }
    }
}

/// The `scale_out` bench.
pub struct ScaleOut;

impl Bench for ScaleOut {
    const NAME: &'static str = "scale_out";
    const PACKAGE: &'static str = crate::PACKAGE;
    type Settings = Settings;
    type Report = Report;

    async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
        run(settings, log).await
    }

    /// Every workload at every concurrency on every side, without an error.
    fn check(settings: &Settings, report: &Report) -> Result<(), String> {
        ensure(
            report.rows.len() == settings.workloads.len() * settings.concurrencies.len(),
            || format!("{} rows", report.rows.len()),
        )?;
        for row in &report.rows {
            for side in Side::ALL {
                row.side(side).check(|| format!("{side:?} {row:?}"))?;
            }
        }
        Ok(())
    }

    fn summary(report: &Report) -> String {
        format!("{}{}", tables(report), summary(report))
    }

    fn section(report: &Report, date: &str, machine: &str) -> String {
        section(report, date, machine)
    }
}

/// Which side a figure is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The embedded engine's ingress, in a child process.
    Embedded,
    /// The deployment on one Restate node.
    OneNode,
    /// The deployment on a cluster of [`CLUSTER_NODES`] nodes.
    Cluster,
}

impl Side {
    /// Every side, in the order of a [`Row`]'s figures.
    pub const ALL: [Side; 3] = [Side::Embedded, Side::OneNode, Side::Cluster];

    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Side::Embedded => "embedded",
            Side::OneNode => "Restate, 1 node",
            Side::Cluster => "Restate, 3 nodes",
        }
    }
}

/// One point's figures, medians over the repetitions.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The workload.
    pub workload: Workload,
    /// Concurrent callers.
    pub concurrency: usize,
    /// The embedded engine over HTTP.
    pub embedded: Measured,
    /// The deployment on one Restate node.
    pub one_node: Measured,
    /// The deployment on the cluster.
    pub cluster: Measured,
}

impl Row {
    /// Restate on one node ÷ the embedded engine.
    pub fn one_node_over_embedded(&self) -> Ratios {
        Ratios::of(&self.one_node, &self.embedded)
    }

    /// Restate on the cluster ÷ Restate on one node.
    pub fn cluster_over_one_node(&self) -> Ratios {
        Ratios::of(&self.cluster, &self.one_node)
    }

    /// The figures of `side`.
    pub fn side(&self, side: Side) -> &Measured {
        match side {
            Side::Embedded => &self.embedded,
            Side::OneNode => &self.one_node,
            Side::Cluster => &self.cluster,
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// How it ran.
    pub settings: Settings,
    /// One row per workload and concurrency.
    pub rows: Vec<Row>,
}

/// The bench's handlers served as a Restate deployment by a task of this process.
struct DeploymentServer {
    /// `http://127.0.0.1:PORT/`, as registered with the clusters.
    url: String,
    stop: CancellationToken,
    task: JoinHandle<Result<(), DeploymentError>>,
}

impl DeploymentServer {
    async fn start() -> Result<Self, String> {
        let deployment = services::definitions()
            .into_iter()
            .fold(Deployment::new(), Deployment::register);
        deployment
            .manifest()
            .map_err(|e| format!("the bench's handlers cannot be served to Restate: {e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("a listener without an address: {e}"))?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(deployment.serve(listener, stop.clone().cancelled_owned()));
        Ok(Self {
            url: format!("http://{address}/"),
            stop,
            task,
        })
    }

    /// Stops serving: waits [`STOP_GRACE`] for the server to end, then drops it.
    async fn stop(mut self) -> Result<(), String> {
        self.stop.cancel();
        match tokio::time::timeout(STOP_GRACE, &mut self.task).await {
            Ok(Ok(Ok(()))) | Err(_) => Ok(()),
            Ok(Ok(Err(e))) => Err(format!("the deployment failed: {e}")),
            Ok(Err(e)) => Err(format!("the deployment died: {e}")),
        }
    }
}

impl Drop for DeploymentServer {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

/// The servers of one run. The clusters come before the deployment: they are dropped (their
/// nodes killed) first.
struct Sides {
    embedded: ZeroAppServer,
    one_node: Cluster,
    cluster: Cluster,
    deployment: DeploymentServer,
}

impl Sides {
    /// The ingresses a side's callers are spread over.
    fn addresses(&self, side: Side) -> Vec<String> {
        match side {
            Side::Embedded => vec![self.embedded.address.clone()],
            Side::OneNode => vec![self.one_node.ingress_address(0)],
            Side::Cluster => (0..self.cluster.len())
                .map(|node| self.cluster.ingress_address(node))
                .collect(),
        }
    }
}

/// Starts the embedded engine's server, the deployment, one Restate node and a 3-node
/// cluster (both with the deployment registered), then runs every point
/// `settings.repetitions` times, interleaved (see the module docs). `log` hears about
/// progress. Every child process is stopped when this returns, also on error.
pub async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
    log("starting zeroapp-bench-server".to_owned());
    let embedded = ZeroAppServer::start().await?;
    let deployment = DeploymentServer::start().await?;
    log(format!(
        "serving the deployment on {}; starting a restate-server {RESTATE_VERSION} node",
        deployment.url
    ));
    let one_node = start_cluster(1, &deployment.url).await?;
    log(format!("starting a {CLUSTER_NODES}-node Restate cluster"));
    let cluster = start_cluster(CLUSTER_NODES, &deployment.url).await?;
    let sides = Sides {
        embedded,
        one_node,
        cluster,
        deployment,
    };
    let rows = match settle(settings, &sides, log).await {
        Ok(()) => measure_all(settings, &sides, log).await,
        Err(e) => Err(e),
    };
    let Sides {
        embedded,
        one_node,
        cluster,
        deployment,
    } = sides;
    drop((one_node, cluster, embedded));
    deployment.stop().await?;
    Ok(Report {
        settings: settings.clone(),
        rows: rows?,
    })
}

/// A cluster of `nodes` nodes with the deployment at `url` registered.
async fn start_cluster(nodes: usize, url: &str) -> Result<Cluster, String> {
    let cluster = Cluster::start(nodes)
        .await
        .map_err(|e| format!("cannot start {nodes} Restate node(s): {e}"))?;
    cluster
        .register(url)
        .await
        .map_err(|e| format!("cannot register the deployment with {nodes} node(s): {e}"))?;
    Ok(cluster)
}

/// Runs every workload on every side for [`Settings::settle`], unmeasured.
async fn settle(
    settings: &Settings,
    sides: &Sides,
    log: &mut dyn FnMut(String),
) -> Result<(), String> {
    log(format!(
        "settling: every workload on every side for {:.1} s at {SETTLE_CALLERS} callers",
        settings.settle.as_secs_f64()
    ));
    let window = Window {
        warmup: Duration::ZERO,
        measure: settings.settle,
    };
    for (index, side) in Side::ALL.into_iter().enumerate() {
        for &workload in &settings.workloads {
            let addresses = sides.addresses(side);
            let prefix = format!("settle-s{index}");
            let sample = http_sample(window, workload, SETTLE_CALLERS, &addresses, &prefix).await?;
            if sample.errors > 0 {
                return Err(format!(
                    "{} answered {} of {workload}'s requests with errors while settling",
                    side.name(),
                    sample.errors
                ));
            }
        }
    }
    Ok(())
}

async fn measure_all(
    settings: &Settings,
    sides: &Sides,
    log: &mut dyn FnMut(String),
) -> Result<Vec<Row>, String> {
    let points = points(&settings.workloads, &settings.concurrencies);
    let runs = repeat_points(
        &points,
        settings.repetitions,
        &Side::ALL.map(Side::name),
        order,
        async |side, workload, concurrency, prefix| {
            let addresses = sides.addresses(Side::ALL[side]);
            let sample =
                http_sample(settings.window, workload, concurrency, &addresses, &prefix).await?;
            Ok(Some(Measured::of(&sample, workload.latency_offset(), 0)))
        },
        log,
    )
    .await?;
    Ok(points
        .iter()
        .zip(&runs)
        .map(|(&(workload, concurrency), runs)| Row {
            workload,
            concurrency,
            embedded: Measured::median_of(&runs[0]),
            one_node: Measured::median_of(&runs[1]),
            cluster: Measured::median_of(&runs[2]),
        })
        .collect())
}

/// The order of the sides (indices into [`Side::ALL`]) in a repetition, counted from 1:
/// embedded, 1 node, 3 nodes; then 1 node, 3 nodes, embedded; then 3 nodes, embedded, 1 node.
fn order(repetition: usize) -> Vec<usize> {
    let count = Side::ALL.len();
    (0..count)
        .map(|i| (i + repetition.saturating_sub(1)) % count)
        .collect()
}

/// The figures as Markdown: one table per workload, a row per concurrency and side, with the
/// ratios (1 node ÷ embedded on the 1-node rows, 3 nodes ÷ 1 node on the 3-node rows).
pub fn tables(report: &Report) -> String {
    let columns = [Column::PerSecond, Column::P50, Column::P99, Column::Errors];
    let extra = ["ratio to", "ops/s ratio", "p50 ratio", "p99 ratio"];
    let mut out = String::new();
    for &workload in &report.settings.workloads {
        let mut lines = Vec::new();
        for row in report.rows.iter().filter(|r| r.workload == workload) {
            for side in Side::ALL {
                let ratios = match side {
                    Side::Embedded => None,
                    Side::OneNode => Some((Side::Embedded, row.one_node_over_embedded())),
                    Side::Cluster => Some((Side::OneNode, row.cluster_over_one_node())),
                };
                let extra = match ratios {
                    Some((of, r)) => [of.name().to_owned()]
                        .into_iter()
                        .chain([r.throughput, r.p50, r.p99].map(|r| format!("**{}**", ratio(r))))
                        .collect(),
                    None => vec![String::new(); extra.len()],
                };
                lines.push(Line {
                    callers: row.concurrency,
                    side: side.name(),
                    measured: row.side(side),
                    extra,
                });
            }
        }
        out.push_str(&workload_table(workload, &columns, &extra, &lines));
    }
    out
}

/// The ratios at the highest concurrency of each workload, as a Markdown list.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    for &workload in &report.settings.workloads {
        let Some(row) = report
            .rows
            .iter()
            .filter(|r| r.workload == workload)
            .max_by_key(|r| r.concurrency)
        else {
            continue;
        };
        let (one, three) = (row.one_node_over_embedded(), row.cluster_over_one_node());
        let _ = writeln!(
            out,
            "- {workload}, {} {}: one Restate node serves **{}** the embedded engine's \
             operations per second at **{}** its p50 ({} against {}); three nodes serve **{}** \
             one node's at **{}** its p50.",
            row.concurrency,
            callers(row.concurrency),
            ratio(one.throughput),
            ratio(one.p50),
            ms(row.one_node.p50),
            ms(row.embedded.p50),
            ratio(three.throughput),
            ratio(three.p50),
        );
    }
    out
}

/// The bench's section of `docs/benchmarks.md`.
pub fn section(report: &Report, date: &str, machine: &str) -> String {
    let s = &report.settings;
    format!(
        "## scale_out: the same handlers embedded, on one Restate node, on three\n\n\
Command: `{}` (a quick check: add `-- --test`). It fetches `restate-server` \
{RESTATE_VERSION} with `npm pack` into `target/restate-server/` the first time \
(`zeroapp_restate::local`).\n\
Run on {date}: {machine}. Each point runs {:.1} s after {:.1} s of warm-up; every figure is \
the median of {} repetitions (errors: the sum over them). In each repetition the three sides \
of a point run back to back, the side going first rotating from one repetition to the next. \
All servers run for the whole bench (an idle 3-node cluster takes about a tenth of a core), so \
their data grows from point to point; before the first point every side runs every workload \
for {:.0} s at {SETTLE_CALLERS} callers, unmeasured (a Restate node's first seconds after \
start-up are several times slower than its steady state).\n\n\
* **embedded**: the engine's ingress (`zeroapp_engine::http`, default limits) in a child \
process, `zeroapp-bench-server`, as in the `restate` bench.\n\
* **Restate, 1 node**: the same handler definitions (`zeroapp_benches_restate::services::\
definitions`, which `zeroapp-bench-server` registers with its engine) served by \
`zeroapp_restate::Deployment` (restate-sdk 0.13, HTTP/2, default `Retention`: 24 h, as \
embedded) to one `restate-server` {RESTATE_VERSION} node started by \
`zeroapp_restate::local::Cluster::single()` (all roles, {PARTITIONS} partitions, every \
listener on 127.0.0.1, otherwise Restate's defaults: its log fsynced before an answer); \
driven through that node's ingress. The deployment is a task of the bench process (a \
listener on 127.0.0.1), as `zeroapp serve --restate-*` serves its own next to the \
storefront.\n\
* **Restate, 3 nodes**: the same deployment (the same listener) registered with a \
{CLUSTER_NODES}-node cluster (`Cluster::start({CLUSTER_NODES})`: every node with every role, \
partitions and log records replicated on {REPLICATION} nodes); caller *i* sends to node \
*i* mod {CLUSTER_NODES}'s ingress. The three nodes share this one machine's cores and disk: \
this side measures what replication and coordination cost, not what more machines would \
give.\n\
* Load: N callers, each with one keep-alive HTTP/1.1 connection, one operation at a time; the \
same requests on the same paths for every side (the `restate` bench's workload code). \
**W1** `POST /Bench/three_steps` (three `run` steps returning small strings); **W3** an \
awakeable round trip in four requests: `POST /AwakeFlow/{{key}}/run/send`, `POST \
/AwakeFlow/{{key}}/awakeable_id` (a shared handler awaiting the promise that holds the \
awakeable's id), `POST /restate/awakeables/{{id}}/resolve`, then `GET \
/restate/workflow/AwakeFlow/{{key}}/attach`; latency is the whole operation, its four \
requests included, and every operation has a fresh workflow key.\n\n\
{}\
Ratios: on each Restate row, its figure ÷ the figure of the side named in the `ratio to` column \
(ops/s above 1× is faster; p50 and p99 above 1× are slower). At the highest concurrency:\n\n\
{}",
        zeroapp_benches::harness::command::<ScaleOut>(),
        s.window.measure.as_secs_f64(),
        s.window.warmup.as_secs_f64(),
        s.repetitions,
        s.settle.as_secs_f64(),
        tables(report),
        summary(report),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_side_goes_first_once_in_three_repetitions() {
        assert_eq!(order(1), [0, 1, 2]);
        assert_eq!(order(2), [1, 2, 0]);
        assert_eq!(order(3), [2, 0, 1]);
        assert_eq!(order(4), order(1));
    }
}
