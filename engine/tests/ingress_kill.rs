//! The ingress across a SIGKILL of the server process (see `common::process`): a send answered
//! 202 is durable, and an attach after the restart returns the invocation's result, with each
//! finished step run once.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::http::{get, post};
use common::process::{DATA, ROLE, SIDE, record, runtime, side_lines, spawn_child};
use zeroapp_engine::http::{self, HttpLimits};
use zeroapp_engine::prelude::*;

/// A step, a durable sleep, another step; each step reports to the side file.
fn builder(side: PathBuf) -> zeroapp_engine::EngineBuilder {
    common::builder().register(Service::new("Slow").handler(
        "go",
        move |ctx: Context, name: String| {
            let side = side.clone();
            async move {
                for step in ["first", "second"] {
                    let side = side.clone();
                    let line = format!("{step} {name}");
                    ctx.run(step, move || {
                        record(&side, &line);
                        async { Ok(()) }
                    })
                    .await?;
                    if step == "first" {
                        ctx.sleep(Duration::from_millis(600)).await?;
                    }
                }
                Ok(format!("{name} done"))
            }
        },
    ))
}

/// The child: serves the ingress on a random port, reports the port, and runs until killed.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    assert_eq!(role, "serve");
    let data = PathBuf::from(std::env::var(DATA).unwrap());
    let side = PathBuf::from(std::env::var(SIDE).unwrap());
    runtime().block_on(async {
        let engine = common::open(builder(side.clone()), &data).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let limits = HttpLimits::default();
        let routes = http::ingress(&engine, &limits);
        record(&side, &format!("port {port}"));
        let never = tokio_util::sync::CancellationToken::new();
        http::serve(listener, routes, limits, never).await.unwrap();
    });
}

/// Waits until the side file has `n` port lines; returns the last port.
fn wait_for_port(side: &Path, n: usize) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ports: Vec<String> = side_lines(side)
            .into_iter()
            .filter(|l| l.starts_with("port "))
            .collect();
        if ports.len() >= n {
            let port: u16 = ports[n - 1]["port ".len()..].parse().unwrap();
            return SocketAddr::from(([127, 0, 0, 1], port));
        }
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_for_line(side: &Path, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !side_lines(side).iter().any(|l| l == line) {
        assert!(Instant::now() < deadline, "never saw {line:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn attach_after_a_kill_returns_the_result() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let side = dir.path().join("side.txt");
    let data = dir.path().join("data");
    let rt = runtime();

    let mut server = spawn_child("serve", &data, &side, false);
    let addr = wait_for_port(&side, 1);
    let send = |addr, name: &str| {
        let reply = rt.block_on(post(addr, "/Slow/go/send", &format!("\"{name}\"")));
        assert_eq!(reply.status, 202, "{}", reply.text());
        reply.json()["invocationId"].as_str().unwrap().to_owned()
    };
    // One invocation killed mid-way (after its first step, during its sleep), one killed right
    // after its 202 — perhaps before it started.
    let midway = send(addr, "midway");
    wait_for_line(&side, "first midway");
    let accepted = send(addr, "accepted");
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();

    let mut server = spawn_child("serve", &data, &side, false);
    let addr = wait_for_port(&side, 2);
    for (id, name) in [(&midway, "midway"), (&accepted, "accepted")] {
        let reply = rt.block_on(get(addr, &format!("/restate/invocation/{id}/attach")));
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json(), format!("{name} done").as_str());
    }
    server.kill().unwrap();
    server.wait().unwrap();

    let lines = side_lines(&side);
    for step in ["first midway", "second midway", "second accepted"] {
        let runs = lines.iter().filter(|l| *l == step).count();
        assert_eq!(runs, 1, "{step} ran {runs} times: {lines:?}");
    }
}
