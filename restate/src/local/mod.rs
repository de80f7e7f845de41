//! Restate servers on this machine, for tests, benchmarks and docs: [`Cluster`] starts one or
//! more `restate-server` processes (release [`RESTATE_VERSION`]), every listener on 127.0.0.1,
//! every node's data in a temporary folder, with no Docker.
//!
//! The binaries come from the npm registry: the first call of [`restate_server_binary`] or
//! [`restatectl_binary`] runs `npm pack @restatedev/restate-server-<platform>@<version>` (and
//! the same for `restatectl`), unpacks the binary from the tarball and keeps it under
//! `<target dir>/restate-server/<version>/package/bin/`; later calls, in any process, reuse it.
//! So the first run needs `npm` and the registry; later runs need neither.
//!
//! Each node is a child process with its stdout and stderr in a log file of its own
//! ([`Cluster::log_tail`]); it is killed (SIGKILL) and reaped when the [`Cluster`] is dropped, so
//! a failing or panicking test leaves no server behind (unless the test process itself is
//! killed with SIGKILL: then the servers outlive it).
//!
//! ```no_run
//! use zeroapp_restate::local::Cluster;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Three nodes, every partition replicated on two of them.
//! let mut cluster = Cluster::start(3).await?;
//! // A deployment (say `zeroapp_restate::Deployment::serve`) listening on 127.0.0.1:9081.
//! let deployment = cluster.register("http://127.0.0.1:9081/").await?;
//! println!("registered {}", deployment["id"]);
//! // Calls go to any node's ingress: `POST {ingress_url}/Greeter/greet`.
//! let ingress = cluster.ingress_url(1);
//! // Fail the busiest node; its partitions move to the others.
//! let busiest = cluster.leader_of_most_partitions()?;
//! cluster.kill(busiest);
//! // ... then bring it back, on the same data.
//! cluster.restart(busiest).await?;
//! # let _ = ingress;
//! # Ok(())
//! # }
//! ```
//!
//! Nodes are numbered from 0 in this API ([`Cluster::admin_url`]`(0)` is the first node); the
//! node named `n1` in Restate's own output (`restatectl`, logs) is node 0, `n2` node 1, and so
//! on. Restate's node *ids* (`N1`, `N2`, …) are assigned in the order the nodes join and need
//! not match the names.

use std::time::Duration;

mod binaries;
mod cluster;
mod http;
mod restatectl;

pub use binaries::{restate_server_binary, restatectl_binary, target_dir};
pub use cluster::Cluster;

/// The Restate release this module runs (npm packages `@restatedev/restate-server-<platform>`
/// and `@restatedev/restatectl-<platform>`).
pub const RESTATE_VERSION: &str = "1.7.12";

/// How many partitions every cluster is provisioned with: Restate's default, written into the
/// configuration so that [`Cluster::start`] knows how many partition leaders to wait for.
pub const PARTITIONS: u16 = 24;

/// The replication factor of multi-node clusters (partitions and logs): each partition has a
/// leader and one follower, each log record is stored on two log servers. A cluster of three
/// nodes thus survives the loss of any one node.
pub const REPLICATION: usize = 2;

/// How long a cluster may take to start (three nodes take about 12 s on a quiet two-core
/// machine; a busy one can take several times longer).
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long [`Cluster::register`] retries, and then waits for every ingress to know the services.
pub(super) const REGISTER_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one HTTP request to a node may take.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause between two polls of a condition.
pub(super) const POLL: Duration = Duration::from_millis(200);
/// How many lines of a node's log an error quotes.
pub(super) const ERROR_LOG_LINES: usize = 30;
/// The cluster name every node is configured with.
pub(super) const CLUSTER_NAME: &str = "zeroapp-local";

/// Why a local Restate server could not be fetched, started or used.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A file could not be written or read, or a process could not be started.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A binary could not be fetched from the npm registry.
    #[error("cannot fetch {package}: {message}")]
    Fetch {
        /// The npm package (`@restatedev/restate-server-linux-x64@1.7.12`).
        package: String,
        /// What went wrong, with npm's own message where there is one.
        message: String,
    },
    /// A node's process exited while it should have been running.
    #[error("node {node} exited ({status}); its log ends:\n{log}")]
    Exited {
        /// The node's index.
        node: usize,
        /// Its exit status.
        status: String,
        /// The last lines of its log.
        log: String,
    },
    /// Something awaited did not happen in time.
    #[error("{what}: not reached within {seconds} s (last: {last})")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it was awaited, in seconds.
        seconds: u64,
        /// The last answer or error seen while waiting.
        last: String,
    },
    /// A node answered a request with a client error (4xx): the request itself is wrong, so it
    /// is not retried.
    #[error("{request} answered {status}: {body}")]
    Refused {
        /// The request (`POST http://127.0.0.1:PORT/deployments`).
        request: String,
        /// The HTTP status code.
        status: u16,
        /// The answer's body.
        body: String,
    },
    /// An answer that could not be read.
    #[error("{what}: {message}")]
    BadAnswer {
        /// Whose answer.
        what: String,
        /// What is wrong with it.
        message: String,
    },
    /// `restatectl` failed, or printed something this module cannot read.
    #[error("restatectl {args}: {message}\n{output}")]
    Restatectl {
        /// Its arguments after `--address`.
        args: String,
        /// What went wrong.
        message: String,
        /// What it printed (stdout, then stderr).
        output: String,
    },
    /// No node to ask: a cluster of zero nodes, or every node stopped.
    #[error("{0}")]
    NoNode(String),
}

impl LocalError {
    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use hyper::{Method, StatusCode};

    use super::cluster::*;
    use super::http::http;
    use super::restatectl::*;

    fn node(name: &str) -> Node {
        Node {
            name: name.to_owned(),
            fabric: 1001,
            admin: 1002,
            ingress: 1003,
            config: PathBuf::from("n.toml"),
            log: PathBuf::from("n.log"),
            process: Mutex::new(None),
        }
    }

    #[test]
    fn every_listener_is_on_loopback() {
        let metadata = [
            "http://127.0.0.1:1001/".to_owned(),
            "http://127.0.0.1:2001/".to_owned(),
        ];
        let config = node_config(&node("n1"), Path::new("base/n1"), true, 2, &metadata);
        for line in config.lines().filter(|l| l.contains("address")) {
            assert!(line.contains("127.0.0.1"), "{line}");
        }
        assert!(config.contains("listen-mode = \"tcp\""));
        assert!(config.contains("auto-provision = true"));
        assert!(config.contains("default-replication = 2"));
        assert!(
            config.contains("addresses = [\"http://127.0.0.1:1001/\", \"http://127.0.0.1:2001/\"]")
        );
        assert!(config.contains("base-dir = \"base/n1\""));
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(9).unwrap();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), 9);
    }

    #[test]
    fn restatectl_sql_output_is_read() {
        // As restatectl 1.7.12 prints it on stdout with --json.
        let output =
            r#"[{"name":"n1","leaders":8},{"name":"n2","leaders":10},{"name":"n3","leaders":6}]"#;
        let rows = parse_leaders(output).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(most_leaders(&rows, 3, |_| true), Some(1));
        assert_eq!(most_leaders(&rows, 3, |node| node != 1), Some(0));
        assert_eq!(most_leaders(&rows, 3, |_| false), None);
        assert_eq!(parse_led(r#"[{"led":24}]"#), Ok(24));
        assert!(parse_led("[]").is_err());
        assert!(parse_leaders("Error: Failed to run query").is_err());
    }

    #[test]
    fn ties_go_to_the_lowest_index() {
        let rows = [
            ("n3".to_owned(), 8),
            ("n1".to_owned(), 8),
            ("n2".to_owned(), 8),
            ("n7".to_owned(), 30),
            ("x".to_owned(), 30),
        ];
        assert_eq!(most_leaders(&rows, 3, |_| true), Some(0));
    }

    /// Fetches restate-server and restatectl (npm) and starts three processes: run with
    /// `cargo test -p zeroapp-restate local -- --ignored`.
    #[tokio::test]
    #[ignore = "fetches Restate from npm and starts a three-node cluster"]
    async fn a_three_node_cluster_survives_losing_its_busiest_node() {
        let mut cluster = Cluster::start(3).await.unwrap();
        assert_eq!(cluster.len(), 3);
        for node in 0..3 {
            assert!(cluster.is_running(node));
        }
        let busiest = cluster.leader_of_most_partitions().unwrap();
        cluster.kill(busiest);
        assert!(!cluster.is_running(busiest));
        let other = (busiest + 1) % 3;
        let (status, _) = http(
            Method::GET,
            &cluster.ingress_address(other),
            "/restate/health",
            None,
        )
        .await
        .unwrap();
        assert_eq!(status, StatusCode::OK);
        cluster.restart(busiest).await.unwrap();
        assert!(cluster.is_running(busiest));
        let listed = cluster.restatectl(&["nodes", "list"]).unwrap();
        assert!(listed.contains("n1") && listed.contains("n3"), "{listed}");
    }
}
