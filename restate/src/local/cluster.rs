//! A cluster of `restate-server` processes on this machine: start, register, kill, restart.

use std::fs::OpenOptions;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use hyper::{Method, StatusCode};
use serde_json::Value;

use super::binaries::*;
use super::http::http;
use super::restatectl::*;
use super::*;

/// One `restate-server` process and its settings.
pub(super) struct Node {
    /// `n1`, `n2`, …: the node's name in Restate.
    pub(super) name: String,
    pub(super) fabric: u16,
    pub(super) admin: u16,
    pub(super) ingress: u16,
    pub(super) config: PathBuf,
    pub(super) log: PathBuf,
    /// The running process; `None` once killed or seen exited. In a mutex so that `&self`
    /// methods can poll it (`Child::try_wait` takes `&mut`).
    pub(super) process: Mutex<Option<Child>>,
}

/// Restate servers on 127.0.0.1, one child process per node, all in one temporary folder
/// (configurations, data, logs) that is deleted on drop, after every process was killed and
/// reaped.
///
/// Every method taking a node index panics if the index is out of range (`node >=`
/// [`len`](Self::len)), like slice indexing.
pub struct Cluster {
    // Declared before `dir`: dropped (killed) before the folder is deleted.
    nodes: Vec<Node>,
    server: PathBuf,
    restatectl: PathBuf,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// One node with every role, provisioned automatically, ports picked free: what a test of a
    /// single Restate server needs. Ready when it returns: every partition has a leader.
    pub async fn single() -> Result<Cluster, LocalError> {
        Self::start(1).await
    }

    /// A cluster of `nodes` nodes (3 is typical), each with every role (metadata server, admin,
    /// worker, log server, HTTP ingress), partitions and logs replicated on
    /// [`REPLICATION`] nodes (on every node if fewer), [`PARTITIONS`] partitions. Node 0 (`n1`)
    /// provisions the cluster; the others join it through the metadata servers.
    ///
    /// Returns when every node's admin API answers `GET /health`, the cluster is provisioned
    /// (`GET /cluster-health` answers 200), every partition has a leader (asked with
    /// `restatectl`) and every node's ingress answers `GET /restate/health`. Fetches the
    /// binaries first if needed (see [`restate_server_binary`]).
    pub async fn start(nodes: usize) -> Result<Cluster, LocalError> {
        if nodes == 0 {
            return Err(LocalError::NoNode(
                "a cluster needs at least one node".to_owned(),
            ));
        }
        let started = Instant::now();
        let (server, restatectl) =
            blocking(|| Ok((restate_server_binary()?, restatectl_binary()?))).await?;
        let dir = tempfile::Builder::new()
            .prefix("zeroapp-restate-")
            .tempdir()
            .map_err(LocalError::io("cannot create a temporary folder"))?;
        let ports = free_ports(3 * nodes)?;
        let mut cluster = Cluster {
            nodes: Vec::with_capacity(nodes),
            server,
            restatectl,
            dir,
        };
        for (index, ports) in ports.chunks_exact(3).enumerate() {
            let name = format!("n{}", index + 1);
            cluster.nodes.push(Node {
                config: cluster.dir.path().join(format!("{name}.toml")),
                log: cluster.dir.path().join(format!("{name}.log")),
                name,
                fabric: ports[0],
                admin: ports[1],
                ingress: ports[2],
                process: Mutex::new(None),
            });
        }
        let metadata: Vec<String> = (0..nodes).map(|i| cluster.fabric_url(i)).collect();
        let replication = REPLICATION.min(nodes);
        for (index, node) in cluster.nodes.iter().enumerate() {
            let base_dir = cluster.dir.path().join(&node.name);
            let config = node_config(node, &base_dir, index == 0, replication, &metadata);
            std::fs::write(&node.config, config).map_err(LocalError::io(format!(
                "cannot write {}",
                node.config.display()
            )))?;
        }
        // From here on, an error drops `cluster`, which kills what was started.
        for index in 0..nodes {
            cluster.spawn(index)?;
        }
        let deadline = Instant::now() + START_TIMEOUT;
        for index in 0..nodes {
            cluster.wait_for_admin(index, deadline).await?;
        }
        // 503 until the cluster is provisioned (deprecated in 1.7, still served by 1.7.12).
        cluster
            .wait_for_ok(
                "the cluster provisioned (GET /cluster-health)",
                cluster.admin_address(0),
                "/cluster-health",
                deadline,
            )
            .await?;
        // The ingresses answer /restate/health within a second, long before any partition
        // processor runs; calls need a leader for their partition (about 10 s for three nodes).
        cluster.wait_for_leaders(deadline).await?;
        for index in 0..nodes {
            cluster.wait_for_ingress(index, deadline).await?;
        }
        tracing::info!(nodes, elapsed = ?started.elapsed(), "local Restate cluster ready");
        Ok(cluster)
    }

    /// How many nodes the cluster has, running or not.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no node (never: [`start`](Self::start) refuses zero nodes).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node's admin API, `http://127.0.0.1:PORT` (deployments, services, SQL `/query`).
    pub fn admin_url(&self, node: usize) -> String {
        format!("http://{}", self.admin_address(node))
    }

    /// The node's admin API as `127.0.0.1:PORT`.
    pub fn admin_address(&self, node: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[node].admin)
    }

    /// The node's HTTP ingress, `http://127.0.0.1:PORT`: where services are called
    /// (`POST {ingress_url}/Service/handler`).
    pub fn ingress_url(&self, node: usize) -> String {
        format!("http://{}", self.ingress_address(node))
    }

    /// The node's HTTP ingress as `127.0.0.1:PORT`.
    pub fn ingress_address(&self, node: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[node].ingress)
    }

    /// The node's node-to-node (fabric) address as Restate advertises it,
    /// `http://127.0.0.1:PORT/`: what `restatectl --address` takes.
    pub fn fabric_url(&self, node: usize) -> String {
        format!("http://127.0.0.1:{}/", self.nodes[node].fabric)
    }

    /// The node's name in Restate (`n1` for node 0).
    pub fn node_name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    /// The temporary folder holding every node's configuration (`n1.toml`), data (`n1/`) and
    /// log (`n1.log`); deleted when the cluster is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The node's process id, if it is running.
    pub fn pid(&self, node: usize) -> Option<u32> {
        let mut process = self.process(node);
        let child = process.as_mut()?;
        match child.try_wait() {
            Ok(None) => Some(child.id()),
            _ => None,
        }
    }

    /// Whether the node's process is running (started, not killed, not exited).
    pub fn is_running(&self, node: usize) -> bool {
        self.pid(node).is_some()
    }

    /// Kills the node's process with SIGKILL (no clean shutdown: a crash) and reaps it; nothing
    /// happens if it is not running. Its data stays, for [`restart`](Self::restart).
    pub fn kill(&mut self, node: usize) {
        let process = self.process(node).take();
        if let Some(mut child) = process {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node again, with the same configuration, ports and data (its log is appended
    /// to), after killing it if it is still running; returns when its admin API and ingress
    /// answer their health checks. The other nodes may still be moving partitions back to it.
    pub async fn restart(&mut self, node: usize) -> Result<(), LocalError> {
        self.kill(node);
        self.spawn(node)?;
        let deadline = Instant::now() + START_TIMEOUT;
        self.wait_for_admin(node, deadline).await?;
        self.wait_for_ingress(node, deadline).await
    }

    /// Ok while there is time left to retry a registration; the timeout with `last` after.
    fn retry_until(deadline: Instant, endpoint_url: &str, last: String) -> Result<(), LocalError> {
        if Instant::now() >= deadline {
            return Err(LocalError::Timeout {
                what: format!("registering {endpoint_url}"),
                seconds: REGISTER_TIMEOUT.as_secs(),
                last,
            });
        }
        Ok(())
    }

    /// Registers a deployment: `POST {admin}/deployments` with `{"uri": endpoint_url, "force":
    /// true}` on the first running node, retried while the node is not ready or the endpoint not
    /// reachable (5xx answers, connection errors) for up to 90 s; a 4xx answer fails at once.
    /// Then waits (same 90 s) until every running node's ingress lists the deployment's
    /// services in `GET /restate/health`. Returns the admin API's answer: `{"id": "dp_…",
    /// "services": [{"name": …, "handlers": […], …}], …}`.
    ///
    /// Restate calls the endpoint over HTTP/2 without TLS (h2c prior knowledge), as
    /// restate-sdk's server (and [`Deployment::serve`](crate::Deployment::serve)) expects.
    pub async fn register(&self, endpoint_url: &str) -> Result<Value, LocalError> {
        let body = serde_json::json!({ "uri": endpoint_url, "force": true }).to_string();
        let deadline = Instant::now() + REGISTER_TIMEOUT;
        let answer = loop {
            self.check_processes()?;
            let node = self.first_running()?;
            let admin = self.admin_address(node);
            match http(Method::POST, &admin, "/deployments", Some(body.clone())).await {
                Ok((status, answer)) if status.is_success() => {
                    break serde_json::from_slice::<Value>(&answer).map_err(|e| {
                        LocalError::BadAnswer {
                            what: format!("POST http://{admin}/deployments"),
                            message: format!("{e}: {}", String::from_utf8_lossy(&answer)),
                        }
                    })?;
                }
                Ok((status, answer)) if status.is_client_error() => {
                    return Err(LocalError::Refused {
                        request: format!("POST http://{admin}/deployments"),
                        status: status.as_u16(),
                        body: String::from_utf8_lossy(&answer).into_owned(),
                    });
                }
                Ok((status, answer)) => {
                    let last = format!("{status} {}", String::from_utf8_lossy(&answer));
                    Self::retry_until(deadline, endpoint_url, last)?;
                }
                Err(error) => Self::retry_until(deadline, endpoint_url, error)?,
            }
            tokio::time::sleep(POLL).await;
        };
        let services: Vec<String> = answer
            .get("services")
            .and_then(Value::as_array)
            .map(|services| {
                services
                    .iter()
                    .filter_map(|s| s.get("name").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        for node in 0..self.len() {
            if self.is_running(node) {
                self.wait_for_services(node, &services, deadline).await?;
            }
        }
        Ok(answer)
    }

    /// The running node that leads the most partitions (the lowest index among equals), from
    /// `restatectl sql` on a running node. Right after a node was killed, Restate may still
    /// report it for a second or two; killed nodes are never returned. After a kill the
    /// survivors take over its partitions within about 3 s; a restarted node gets its share
    /// back about 10 s after it started.
    ///
    /// `restatectl partitions list` shows the same, as a table whose `NODE` column holds node
    /// ids (`N1:2`, id and generation), which are assigned in the order the nodes joined and
    /// need not match the names (`n3` can be `N2`); the SQL tables give the names directly:
    ///
    /// ```text
    /// $ restatectl --address http://127.0.0.1:PORT/ sql --json "SELECT n.name AS name, …"
    /// [{"name":"n1","leaders":8},{"name":"n2","leaders":8},{"name":"n3","leaders":8}]
    /// ```
    pub fn leader_of_most_partitions(&self) -> Result<usize, LocalError> {
        let args = ["sql", "--json", LEADERS_QUERY];
        let mut last = Err(LocalError::NoNode(
            "no node of the cluster is running".to_owned(),
        ));
        // A node restarted a moment ago answers with no rows until it has caught up: each
        // running node is asked in turn until one names a running leader.
        for node in (0..self.len()).filter(|&node| self.is_running(node)) {
            let output = match run_restatectl(&self.restatectl, &self.fabric_url(node), &args) {
                Ok(output) => output,
                Err(error) => {
                    last = Err(error);
                    continue;
                }
            };
            let fail = |message: String| LocalError::Restatectl {
                args: args.join(" "),
                message,
                output: output.clone(),
            };
            last = parse_leaders(&output).map_err(fail).and_then(|rows| {
                most_leaders(&rows, self.len(), |node| self.is_running(node))
                    .ok_or_else(|| fail("no running node leads a partition".to_owned()))
            });
            if last.is_ok() {
                break;
            }
        }
        last
    }

    /// Runs `restatectl --address <fabric address of the first running node> <args>` (no
    /// colors) and returns what it printed on stdout: for example `&["partitions", "list"]`,
    /// `&["nodes", "list"]`, `&["status"]` or `&["sql", "--json", "SELECT …"]`.
    ///
    /// Only one address is passed: given several, restatectl 1.7 gives up when the first does
    /// not answer.
    pub fn restatectl(&self, args: &[&str]) -> Result<String, LocalError> {
        let node = self.first_running()?;
        run_restatectl(&self.restatectl, &self.fabric_url(node), args)
    }

    /// The last `lines` lines of the node's log (its stdout and stderr, since the cluster
    /// started, across restarts); empty if there is none yet.
    pub fn log_tail(&self, node: usize, lines: usize) -> String {
        let log = std::fs::read(&self.nodes[node].log).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    // -- internals ------------------------------------------------------------------------

    fn process(&self, node: usize) -> MutexGuard<'_, Option<Child>> {
        self.nodes[node]
            .process
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn first_running(&self) -> Result<usize, LocalError> {
        (0..self.len())
            .find(|&node| self.is_running(node))
            .ok_or_else(|| LocalError::NoNode("no node of the cluster is running".to_owned()))
    }

    /// Starts the node's process, its output appended to its log.
    fn spawn(&self, node: usize) -> Result<(), LocalError> {
        let settings = &self.nodes[node];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&settings.log)
            .map_err(LocalError::io(format!(
                "cannot open {}",
                settings.log.display()
            )))?;
        let log_err = log.try_clone().map_err(LocalError::io(format!(
            "cannot share {}",
            settings.log.display()
        )))?;
        let mut command = Command::new(&self.server);
        command
            .arg("--no-logo")
            .arg("--config-file")
            .arg(&settings.config)
            .current_dir(self.dir.path())
            // Restate leaves `invoker-*` folders in the temporary folder: keep them in the
            // cluster's own, removed with it.
            .env("TMPDIR", self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // RESTATE_* variables override the configuration file (RESTATE_CONFIG even replaces
        // it) and RUST_LOG overrides `log-filter`: none of the caller's may leak in.
        for (key, _) in std::env::vars_os() {
            if key
                .to_str()
                .is_some_and(|key| key.starts_with("RESTATE_") || key == "RUST_LOG")
            {
                command.env_remove(&key);
            }
        }
        let child = command.spawn().map_err(LocalError::io(format!(
            "cannot start {} for node {node}",
            self.server.display()
        )))?;
        *self.process(node) = Some(child);
        Ok(())
    }

    /// An error if a node that should be running has exited (it is then marked stopped).
    fn check_processes(&self) -> Result<(), LocalError> {
        for node in 0..self.len() {
            let mut process = self.process(node);
            let Some(child) = process.as_mut() else {
                continue;
            };
            match child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => {
                    *process = None;
                    drop(process);
                    return Err(LocalError::Exited {
                        node,
                        status: status.to_string(),
                        log: self.log_tail(node, ERROR_LOG_LINES),
                    });
                }
                Err(source) => {
                    return Err(LocalError::Io {
                        context: format!("cannot check on node {node}'s process"),
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Calls `attempt` until it succeeds, a node dies or `deadline` passes. `attempt` returns
    /// `Err(what it saw)` while the condition does not hold.
    async fn poll_until<F, Fut>(
        &self,
        what: &str,
        deadline: Instant,
        mut attempt: F,
    ) -> Result<(), LocalError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        loop {
            self.check_processes()?;
            let last = match attempt().await {
                Ok(()) => return Ok(()),
                Err(last) => last,
            };
            if Instant::now() >= deadline {
                return Err(LocalError::Timeout {
                    what: what.to_owned(),
                    seconds: START_TIMEOUT.as_secs(),
                    last,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls `GET http://{address}{path}` until it answers 200.
    async fn wait_for_ok(
        &self,
        what: &str,
        address: String,
        path: &'static str,
        deadline: Instant,
    ) -> Result<(), LocalError> {
        self.poll_until(what, deadline, || {
            let address = address.clone();
            async move {
                match http(Method::GET, &address, path, None).await {
                    Ok((StatusCode::OK, _)) => Ok(()),
                    Ok((status, body)) => {
                        Err(format!("{status} {}", String::from_utf8_lossy(&body)))
                    }
                    Err(error) => Err(error),
                }
            }
        })
        .await
    }

    async fn wait_for_admin(&self, node: usize, deadline: Instant) -> Result<(), LocalError> {
        let what = format!("node {node}'s admin API (GET /health)");
        self.wait_for_ok(&what, self.admin_address(node), "/health", deadline)
            .await
    }

    async fn wait_for_ingress(&self, node: usize, deadline: Instant) -> Result<(), LocalError> {
        let what = format!("node {node}'s ingress (GET /restate/health)");
        self.wait_for_ok(
            &what,
            self.ingress_address(node),
            "/restate/health",
            deadline,
        )
        .await
    }

    /// Polls the node's `GET /restate/health` (`{"services":["Greeter", …]}`) until it lists
    /// every one of `services`.
    async fn wait_for_services(
        &self,
        node: usize,
        services: &[String],
        deadline: Instant,
    ) -> Result<(), LocalError> {
        let address = self.ingress_address(node);
        let what = format!("node {node}'s ingress serving {services:?}");
        self.poll_until(&what, deadline, || {
            let address = address.clone();
            async move {
                let (status, body) = http(Method::GET, &address, "/restate/health", None).await?;
                let text = String::from_utf8_lossy(&body).into_owned();
                if status != StatusCode::OK {
                    return Err(format!("{status} {text}"));
                }
                let served: Value =
                    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
                let served = served.get("services").and_then(Value::as_array);
                let all = services.iter().all(|wanted| {
                    served.is_some_and(|served| {
                        served.iter().any(|s| s.as_str() == Some(wanted.as_str()))
                    })
                });
                if all { Ok(()) } else { Err(text) }
            }
        })
        .await
    }

    /// Polls `restatectl` on node 0 until every partition has a leader.
    async fn wait_for_leaders(&self, deadline: Instant) -> Result<(), LocalError> {
        self.poll_until("a leader for every partition", deadline, || {
            let restatectl = self.restatectl.clone();
            let address = self.fabric_url(0);
            async move {
                let output = blocking(move || {
                    run_restatectl(&restatectl, &address, &["sql", "--json", LED_QUERY])
                })
                .await
                .map_err(|e| e.to_string())?;
                let led = parse_led(&output)?;
                if led >= u64::from(PARTITIONS) {
                    Ok(())
                } else {
                    Err(format!("{led} of {PARTITIONS} partitions have a leader"))
                }
            }
        })
        .await
    }
}

impl std::fmt::Debug for Cluster {
    /// The folder and, per node, its name and fabric, admin and ingress ports.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<(&str, u16, u16, u16)> = self
            .nodes
            .iter()
            .map(|node| (node.name.as_str(), node.fabric, node.admin, node.ingress))
            .collect();
        f.debug_struct("Cluster")
            .field("dir", &self.dir.path())
            .field("nodes", &nodes)
            .finish_non_exhaustive()
    }
}

impl Drop for Cluster {
    /// Kills every node's process (SIGKILL, all first, then reaps them all).
    fn drop(&mut self) {
        let mut children: Vec<Child> = self
            .nodes
            .iter()
            .filter_map(|node| {
                node.process
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
            })
            .collect();
        for child in &mut children {
            let _ = child.kill();
        }
        for child in &mut children {
            let _ = child.wait();
        }
    }
}

/// A node's configuration file. Checked against restate-server 1.7.12 (`--dump-config`, and a
/// three-node cluster started by hand): `default-replication` is a top-level key since 1.4 (it
/// covers partitions and logs); `roles` is left out, its default being all five
/// (`metadata-server`, `admin`, `worker`, `log-server`, `http-ingress`); every node lists every
/// node's fabric address under `[metadata-client] addresses`, and the metadata servers of the
/// nodes that did not provision join on their own (`[metadata-server] auto-join = true`, the
/// default). `listen-mode = "tcp"`: no Unix sockets in the data folder.
pub(super) fn node_config(
    node: &Node,
    base_dir: &Path,
    provisions: bool,
    replication: usize,
    metadata: &[String],
) -> String {
    let addresses: Vec<String> = metadata.iter().map(|a| toml_string(a.as_str())).collect();
    format!(
        "node-name = {name}\n\
         cluster-name = {cluster}\n\
         base-dir = {base_dir}\n\
         auto-provision = {provisions}\n\
         default-replication = {replication}\n\
         default-num-partitions = {PARTITIONS}\n\
         disable-telemetry = true\n\
         listen-mode = \"tcp\"\n\
         bind-address = \"127.0.0.1:{fabric}\"\n\
         advertised-address = \"http://127.0.0.1:{fabric}/\"\n\
         log-filter = \"warn\"\n\
         log-disable-ansi-codes = true\n\
         \n\
         [metadata-client]\n\
         addresses = [{addresses}]\n\
         \n\
         [admin]\n\
         bind-address = \"127.0.0.1:{admin}\"\n\
         \n\
         [ingress]\n\
         bind-address = \"127.0.0.1:{ingress}\"\n",
        name = toml_string(&node.name),
        cluster = toml_string(CLUSTER_NAME),
        base_dir = toml_string(&base_dir.display().to_string()),
        fabric = node.fabric,
        admin = node.admin,
        ingress = node.ingress,
        addresses = addresses.join(", "),
    )
}

/// A TOML basic string.
pub(super) fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `count` distinct ports on 127.0.0.1 that were free a moment ago (all held until all are
/// picked, so none is picked twice).
pub(super) fn free_ports(count: usize) -> Result<Vec<u16>, LocalError> {
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count {
        listeners.push(
            std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(LocalError::io("cannot listen on 127.0.0.1"))?,
        );
    }
    listeners
        .iter()
        .map(|listener| {
            listener
                .local_addr()
                .map(|address| address.port())
                .map_err(LocalError::io("a listener without an address"))
        })
        .collect()
}

/// Runs `f` on tokio's blocking threads (`npm pack`, `restatectl`).
async fn blocking<T, F>(f: F) -> Result<T, LocalError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, LocalError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LocalError::Io {
            context: "a blocking task failed".to_owned(),
            source: std::io::Error::other(e),
        })?
}
