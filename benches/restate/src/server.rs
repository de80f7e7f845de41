//! The servers the bench starts as child processes, all on 127.0.0.1 only: the engine's
//! ingress (`zeroapp-bench-server`, this crate's binary), and a Restate server with the
//! `restate-sdk` twins of the handlers (`benches/restate/services`); the `restate-server`
//! binary comes from [`zeroapp_restate::local::restate_server_binary`]. Every child sits in a
//! [`ChildGuard`], which kills and reaps it when dropped, so a failed or panicking run leaves
//! nothing behind.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::StatusCode;

use zeroapp_benches::http_load::HttpConnection;

/// How long a server may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A child process, killed and reaped when dropped.
pub struct ChildGuard {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
}

impl ChildGuard {
    /// Starts `command` with its stdout and stderr appended to `log`.
    pub fn spawn(name: &'static str, mut command: Command, log: &Path) -> Result<Self, String> {
        let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        let child = command
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Self {
            name,
            child: Some(child),
            log: log.to_owned(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Its resident memory now, in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(&format!("/proc/{}/status", self.pid()))
    }

    /// An error if the process has exited, with the end of its log.
    pub fn check_alive(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else {
            return Err(format!("{} was stopped", self.name));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                Err(format!(
                    "{} exited ({status}); its log ends:\n{tail}",
                    self.name
                ))
            }
            Err(e) => Err(format!("cannot check on {}: {e}", self.name)),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `VmRSS` in KiB from a `/proc/<pid>/status` file.
pub fn rss_kib(status_path: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_path).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no local address: {e}"))
}

/// Polls `GET path` on `address` until it answers 200, the children die, or time runs out.
async fn wait_for(
    address: &str,
    path: &str,
    children: &mut [&mut ChildGuard],
) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        for child in children.iter_mut() {
            child.check_alive()?;
        }
        if let Ok(mut c) = HttpConnection::open(address).await {
            if let Ok((StatusCode::OK, _)) = c.get(path).await {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("http://{address}{path} did not answer 200 in time"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The engine's ingress in a child process (`zeroapp-bench-server`), with every bench handler
/// registered, on a fresh data folder.
pub struct ZeroAppServer {
    /// The ingress, `127.0.0.1:port`.
    pub address: String,
    process: ChildGuard,
    _dir: tempfile::TempDir,
}

impl ZeroAppServer {
    /// Starts `exe` and waits until its ingress answers.
    pub async fn start() -> Result<Self, String> {
        let exe = zeroapp_server_exe()?;
        let dir = zeroapp_benches::invocations::temp_dir()?;
        let address = format!("127.0.0.1:{}", free_port()?);
        let mut command = Command::new(exe);
        command
            .arg(dir.path().join("data"))
            .arg(&address)
            .stdin(Stdio::piped());
        let mut process =
            ChildGuard::spawn("zeroapp-bench-server", command, &dir.path().join("log"))?;
        wait_for(&address, "/restate/health", &mut [&mut process]).await?;
        Ok(Self {
            address,
            process,
            _dir: dir,
        })
    }

    /// The server's resident memory, KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        self.process.rss_kib()
    }
}

/// The Restate server's settings the bench writes (every address on 127.0.0.1, ports picked
/// free); everything else, durability included, is Restate's default (see
/// [`RESTATE_SETTINGS`]).
pub fn restate_config(base_dir: &Path, fabric: u16, admin: u16, ingress: u16) -> String {
    format!(
        "node-name = \"bench\"\n\
         cluster-name = \"zeroapp-bench\"\n\
         base-dir = \"{}\"\n\
         auto-provision = true\n\
         disable-telemetry = true\n\
         listen-mode = \"tcp\"\n\
         bind-address = \"127.0.0.1:{fabric}\"\n\
         advertised-address = \"http://127.0.0.1:{fabric}/\"\n\
         log-filter = \"warn\"\n\
         log-disable-ansi-codes = true\n\n\
         [metadata-client]\n\
         addresses = [\"http://127.0.0.1:{fabric}/\"]\n\n\
         [admin]\n\
         bind-address = \"127.0.0.1:{admin}\"\n\n\
         [ingress]\n\
         bind-address = \"127.0.0.1:{ingress}\"\n",
        base_dir.display()
    )
}

/// What the report says of Restate's settings.
pub const RESTATE_SETTINGS: &str = "a single node with all roles and otherwise \
`--dump-config`'s defaults: 24 partitions; the log on the replicated loglet served by the \
node's own log-server, whose RocksDB WAL is fsynced (`[log-server] \
rocksdb-disable-wal-fsync = false`, likewise `[bifrost.local]`); every listener on 127.0.0.1 \
(`listen-mode = \"tcp\"`; fabric, admin and ingress on free ports); data in a temporary \
folder; `disable-telemetry = true`. At startup the server still looks up `api.github.com` once \
(its new-version notice); with no network the lookup fails and no connection leaves the \
machine";

/// A Restate server and the `restate-sdk` services it calls, both children of the bench.
pub struct RestateServer {
    /// The ingress, `127.0.0.1:port`.
    pub address: String,
    server: ChildGuard,
    services: ChildGuard,
    _dir: tempfile::TempDir,
}

impl RestateServer {
    /// Starts `server` (the `restate-server` binary) and `services` (the
    /// `zeroapp-restate-services` binary), registers the services through the admin API
    /// (`POST /deployments`), and waits until the ingress serves `Bench/three_steps`.
    pub async fn start(server: &Path, services: &Path) -> Result<Self, String> {
        let dir = zeroapp_benches::invocations::temp_dir()?;
        let (fabric, admin, ingress, endpoint) =
            (free_port()?, free_port()?, free_port()?, free_port()?);
        let config = dir.path().join("restate.toml");
        std::fs::write(
            &config,
            restate_config(&dir.path().join("data"), fabric, admin, ingress),
        )
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;

        let mut command = Command::new(services);
        command.arg(format!("127.0.0.1:{endpoint}"));
        let mut services = ChildGuard::spawn(
            "restate services",
            command,
            &dir.path().join("services.log"),
        )?;

        let mut command = Command::new(server);
        command.arg("--no-logo").arg("--config-file").arg(&config);
        command.env_remove("RESTATE_CONFIG");
        let mut server =
            ChildGuard::spawn("restate-server", command, &dir.path().join("server.log"))?;

        let admin_address = format!("127.0.0.1:{admin}");
        wait_for(&admin_address, "/health", &mut [&mut server, &mut services]).await?;
        register(&admin_address, endpoint).await?;
        let address = format!("127.0.0.1:{ingress}");
        wait_until_served(&address, &mut [&mut server, &mut services]).await?;
        Ok(Self {
            address,
            server,
            services,
            _dir: dir,
        })
    }

    /// The resident memory of the server and of the services process, KiB.
    pub fn rss_kib(&self) -> (Option<u64>, Option<u64>) {
        (self.server.rss_kib(), self.services.rss_kib())
    }
}

/// `POST /deployments` with the services' URI, retried while the admin API is not ready.
async fn register(admin: &str, endpoint: u16) -> Result<(), String> {
    let body = format!("{{\"uri\": \"http://127.0.0.1:{endpoint}/\"}}");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let mut c = HttpConnection::open(admin).await?;
        let (status, answer) = c.post("/deployments", &body).await?;
        if status.is_success() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "registering the services failed: {status} {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Calls `Bench/three_steps` until it answers 200: the deployment has reached the ingress.
async fn wait_until_served(address: &str, children: &mut [&mut ChildGuard]) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        for child in children.iter_mut() {
            child.check_alive()?;
        }
        let mut c = HttpConnection::open(address).await?;
        if let Ok((StatusCode::OK, _)) = c.post("/Bench/three_steps", "\"warm\"").await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("Restate's ingress did not serve Bench/three_steps in time".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// This repository's root (the workspace).
pub fn workspace_root() -> PathBuf {
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    package.ancestors().nth(2).unwrap_or(package).to_owned()
}

/// Builds `benches/restate/services` (release, into `target/restate-services/`) and returns
/// its binary.
pub fn restate_services_binary() -> Result<PathBuf, String> {
    let target = workspace_root().join("target").join("restate-services");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("building benches/restate/services (restate-sdk) in release mode");
    run(Command::new(cargo)
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("services")
                .join("Cargo.toml"),
        )
        .arg("--target-dir")
        .arg(&target))?;
    Ok(target.join("release").join("zeroapp-restate-services"))
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let status = command
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed: {status}"))
    }
}

/// The `zeroapp-bench-server` binary of this build: next to the running bench or test binary
/// (Cargo builds a package's binaries before its benches and tests, into the folder above
/// their `deps/`).
pub fn zeroapp_server_exe() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let folder = me.parent().ok_or("this executable has no folder")?;
    let folder = if folder.ends_with("deps") {
        folder.parent().unwrap_or(folder)
    } else {
        folder
    };
    let exe = folder.join("zeroapp-bench-server");
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(format!(
            "{} is missing: build it with `cargo build -p zeroapp-benches-restate --bins` \
             (in the same profile)",
            exe.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_proc() {
        assert!(rss_kib("/proc/self/status").is_some_and(|kib| kib > 0));
        assert_eq!(rss_kib("/nonexistent/status"), None);
    }

    #[test]
    fn restate_listens_on_loopback_only() {
        let config = restate_config(Path::new("/tmp/x"), 1, 2, 3);
        for line in config.lines().filter(|l| l.contains("address")) {
            assert!(line.contains("127.0.0.1"), "{line}");
        }
        assert!(config.contains("listen-mode = \"tcp\""));
    }
}
