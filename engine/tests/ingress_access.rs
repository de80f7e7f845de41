//! Who gets in through the HTTP listeners, against a real server on 127.0.0.1: ingress-private
//! handlers, bearer tokens, and an attach whose client hangs up.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::{get, post, request};
use common::ingress_server::{Server, small_limits};
use tokio::io::AsyncWriteExt;
use zeroapp_engine::prelude::*;

/// Ingress-private handlers: refused over HTTP (403, the JSON error, nothing written), called by
/// other handlers and through the in-process client; a service, a workflow or one handler.
#[tokio::test]
async fn private_handlers_are_refused_by_the_ingress_only() {
    let server = Server::start(small_limits()).await;
    let before = server.written();
    for (method, path) in [
        ("POST", "/Vault/open"),
        ("POST", "/Vault/open/send"),
        ("GET", "/Vault/open"),
        ("POST", "/Account/a/audit"),
        ("POST", "/Secret/k/run"),
        ("POST", "/Secret/k/run/send"),
        ("GET", "/restate/workflow/Secret/k/attach"),
        ("GET", "/restate/workflow/Secret/k/output"),
        ("GET", "/restate/invocation/Vault/open/key-1/attach"),
    ] {
        let reply = request(server.ingress, method, path, &[], r#""Eve""#).await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.text());
        assert!(
            reply.error_message().contains("is private"),
            "{path}: {}",
            reply.text()
        );
        assert_eq!(
            reply.header("x-restate-error-source").as_deref(),
            Some("ingress")
        );
    }
    assert_eq!(server.written(), before, "a refusal writes nothing");

    // Other handlers call it; so does the in-process client.
    let knocked = post(server.ingress, "/Front/knock", r#""Ada""#).await;
    assert_eq!(knocked.status, 200, "{}", knocked.text());
    assert_eq!(knocked.json(), "vault opened for Ada");
    let client = server.engine.client();
    let opened: String = client
        .call(Target::service("Vault", "open"), &"Bob")
        .await
        .unwrap();
    assert_eq!(opened, "vault opened for Bob");
    // One private handler of an object; its other handlers stay public.
    assert_eq!(
        post(server.ingress, "/Account/a/deposit", "5").await.json(),
        5
    );
    // An invocation of a private handler cannot be attached to by id either.
    let id = client
        .send(Target::service("Vault", "open"), &"Cy")
        .await
        .unwrap();
    let attach = get(server.ingress, &format!("/restate/invocation/{id}/attach")).await;
    assert_eq!(attach.status, 403, "{}", attach.text());
    server.stop().await;
}

/// Bearer tokens: the ingress and the admin API each take their own; a missing or wrong token
/// is 401 with the JSON error and `WWW-Authenticate: Bearer`, before anything is read or
/// written; the health checks stay open.
#[tokio::test]
async fn tokens_guard_the_ingress_and_the_admin_api() {
    let (ingress_token, admin_token) = ("ingress-secret-0123456789", "admin-secret-0123456789");
    let server = Server::start_with(small_limits(), Some((ingress_token, admin_token))).await;
    let before = server.written();
    let bearer = |token: &str| format!("Bearer {token}");
    let call = |token: Option<String>| async move {
        let headers: Vec<(&str, &str)> = match &token {
            Some(value) => vec![("authorization", value.as_str())],
            None => vec![],
        };
        request(
            server.ingress,
            "POST",
            "/Greeter/greet",
            &headers,
            r#""Ada""#,
        )
        .await
    };
    for (token, message) in [
        (None, "needs a token"),
        (Some(bearer("wrong-token-0123456789")), "not this server's"),
        (Some(bearer(admin_token)), "not this server's"),
        (Some(format!("Basic {ingress_token}")), "needs a token"),
    ] {
        let reply = call(token.clone()).await;
        assert_eq!(reply.status, 401, "{token:?}: {}", reply.text());
        assert!(reply.error_message().contains(message), "{}", reply.text());
        assert_eq!(reply.header("www-authenticate").as_deref(), Some("Bearer"));
    }
    assert_eq!(server.written(), before, "a refusal writes nothing");
    let reply = call(Some(bearer(ingress_token))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(get(server.ingress, "/restate/health").await.status, 200);

    let listed = get(server.admin, "/invocations").await;
    assert_eq!(listed.status, 401, "{}", listed.text());
    let with_ingress_token = request(
        server.admin,
        "GET",
        "/invocations",
        &[("authorization", &bearer(ingress_token))],
        "",
    )
    .await;
    assert_eq!(with_ingress_token.status, 401, "the tokens are distinct");
    let listed = request(
        server.admin,
        "GET",
        "/invocations",
        &[("authorization", &bearer(admin_token))],
        "",
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(get(server.admin, "/health").await.status, 200);
    assert_eq!(get(server.admin, "/metrics").await.status, 401);
    server.stop().await;
}

/// The number a `/metrics` line shows.
async fn metric(admin: SocketAddr, name: &str) -> u64 {
    let text = get(admin, "/metrics").await.text();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// An `attach` whose client hangs up gives its watcher back at once, not when the invocation
/// ends; the invocation itself goes on.
#[tokio::test]
async fn an_attach_whose_client_hangs_up_releases_its_watcher() {
    let server = Server::start(small_limits()).await;
    let sent = post(server.ingress, "/Waiter/w/wait/send", "").await;
    assert_eq!(sent.status, 202, "{}", sent.text());
    let id = sent.json()["invocationId"].as_str().unwrap().to_owned();
    assert_eq!(metric(server.admin, "zeroapp_attach_waiting").await, 0);

    let mut connection = tokio::net::TcpStream::connect(server.ingress)
        .await
        .unwrap();
    let request = format!("GET /restate/invocation/{id}/attach HTTP/1.1\r\nhost: x\r\n\r\n");
    connection.write_all(request.as_bytes()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(server.admin, "zeroapp_attach_waiting").await != 1 {
        assert!(
            Instant::now() < deadline,
            "the attach never started waiting"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(connection);
    while metric(server.admin, "zeroapp_attach_waiting").await != 0 {
        assert!(Instant::now() < deadline, "the watcher outlived its client");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The invocation still waits for its awakeable, and a new attach gets its outcome.
    let status = get(server.admin, &format!("/invocations/{id}")).await;
    assert_eq!(status.status, 200, "{}", status.text());
    assert_ne!(status.json()["status"], "completed", "{}", status.text());
    server.stop().await;
}
