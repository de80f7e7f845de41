//! The HTTP ingress and the admin API against a real server on 127.0.0.1: every route, the
//! statuses of bad input (and that nothing is written for it), idempotent retries, limits, and
//! graceful shutdown with a request in flight.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::http::{get, post, request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroapp_engine::http::HttpLimits;

use common::ingress_server::{COUNTED, Server, assert_invocation_id, small_limits};

#[tokio::test]
async fn calls_services_and_objects_by_name() {
    let server = Server::start(small_limits()).await;
    let reply = post(server.ingress, "/Greeter/greet", r#""Ada""#).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), "Hello, Ada!");
    assert_eq!(reply.header("content-type").unwrap(), "application/json");
    assert_invocation_id(&reply);

    assert_eq!(
        post(server.ingress, "/Counter/apples/add", "3")
            .await
            .json(),
        3
    );
    assert_eq!(
        post(server.ingress, "/Counter/apples/add/", "4")
            .await
            .json(),
        7
    );
    assert_eq!(
        post(server.ingress, "/Counter/pears/add", "1").await.json(),
        1
    );
    // Restate accepts GET for calls too; a key with a space is percent-encoded. A shared
    // handler that only reads answers without becoming an invocation: no `x-restate-id`.
    let total = get(server.ingress, "/Counter/apples/total").await;
    assert_eq!(total.json(), 7);
    assert!(total.header("x-restate-id").is_none());
    let added = post(server.ingress, "/Counter/apples/add", "0").await;
    assert!(added.header("x-restate-id").is_some());
    assert_eq!(
        post(server.ingress, "/Counter/red%20apples/add", "2")
            .await
            .json(),
        2
    );
    let state = get(server.admin, "/objects/Counter/red%20apples/state").await;
    assert_eq!(state.json()["state"]["total"], 2);

    let health = get(server.ingress, "/restate/health").await;
    assert_eq!(
        health.json()["services"],
        serde_json::json!([
            "Account", "Approval", "Counter", "Front", "Greeter", "Waiter"
        ]),
        "wholly private services are not named"
    );
    server.stop().await;
}

#[tokio::test]
async fn binary_handlers_take_and_answer_bytes_as_they_are() {
    let server = Server::start(small_limits()).await;
    let bytes: &[u8] = &[0, 159, 146, 150, b'{'];
    let octets = [("content-type", "application/octet-stream")];
    let reply = request(server.ingress, "POST", "/Greeter/reverse", &octets, bytes).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(&reply.body[..], &[b'{', 150, 146, 159, 0]);
    assert_eq!(
        reply.header("content-type").unwrap(),
        "application/octet-stream"
    );
    let id = assert_invocation_id(&reply);
    // Bytes in, JSON out; an empty body is no bytes, not `null`.
    let size = request(server.ingress, "POST", "/Greeter/size", &octets, bytes).await;
    assert_eq!((size.status, size.json()), (200, serde_json::json!(5)));
    assert_eq!(post(server.ingress, "/Greeter/size", "").await.json(), 0);
    // The output by id and through attach keeps the handler's format.
    let output = get(server.ingress, &format!("/restate/invocation/{id}/output")).await;
    assert_eq!(&output.body[..], &[b'{', 150, 146, 159, 0]);
    assert_eq!(
        output.header("content-type").unwrap(),
        "application/octet-stream"
    );
    // A JSON handler still refuses bytes that are not JSON.
    let refused = request(server.ingress, "POST", "/Greeter/greet", &octets, bytes).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    server.stop().await;
}

#[tokio::test]
async fn send_then_attach_and_output() {
    let server = Server::start(small_limits()).await;
    let sent = post(server.ingress, "/Greeter/greet/send", r#""Bo""#).await;
    assert_eq!(sent.status, 202, "{}", sent.text());
    let body = sent.json();
    assert_eq!(body["status"], "Accepted");
    let id = body["invocationId"].as_str().unwrap().to_owned();
    assert_eq!(assert_invocation_id(&sent), id);
    let attached = get(server.ingress, &format!("/restate/invocation/{id}/attach")).await;
    assert_eq!(
        (attached.status, attached.json()),
        (200, "Hello, Bo!".into())
    );
    let output = get(server.ingress, &format!("/restate/invocation/{id}/output")).await;
    assert_eq!((output.status, output.json()), (200, "Hello, Bo!".into()));

    // A delayed send: not ready until its time, then done.
    let started = Instant::now();
    let sent = post(server.ingress, "/Greeter/greet/send?delay=300ms", r#""Cy""#).await;
    assert_eq!(sent.status, 202);
    assert!(
        sent.json()["executionTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let id = sent.json()["invocationId"].as_str().unwrap().to_owned();
    let early = get(server.ingress, &format!("/restate/invocation/{id}/output")).await;
    assert_eq!(early.status, 470, "{}", early.text());
    assert!(early.error_message().contains("not completed"));
    let attached = get(server.ingress, &format!("/restate/invocation/{id}/attach")).await;
    assert_eq!(attached.json(), "Hello, Cy!");
    assert!(started.elapsed() >= Duration::from_millis(300));
    server.stop().await;
}

#[tokio::test]
async fn an_idempotent_retry_gets_the_same_response() {
    let server = Server::start(small_limits()).await;
    let key = [("idempotency-key", "order-17")];
    let first = request(server.ingress, "POST", "/Greeter/count", &key, r#""Di""#).await;
    let again = request(server.ingress, "POST", "/Greeter/count", &key, r#""Di""#).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        (again.status, again.body.clone()),
        (200, first.body.clone())
    );
    assert_eq!(again.header("x-restate-id"), first.header("x-restate-id"));
    let runs_after_two_calls = COUNTED.load(Ordering::SeqCst);

    let resent = request(
        server.ingress,
        "POST",
        "/Greeter/count/send",
        &key,
        r#""Di""#,
    )
    .await;
    assert_eq!(resent.status, 202);
    assert_eq!(resent.json()["status"], "PreviouslyAccepted");
    assert_eq!(
        COUNTED.load(Ordering::SeqCst),
        runs_after_two_calls,
        "no new run"
    );

    let by_key = get(
        server.ingress,
        "/restate/invocation/Greeter/count/order-17/output",
    )
    .await;
    assert_eq!(by_key.body, first.body);
    let by_key = get(
        server.ingress,
        "/restate/invocation/Greeter/count/order-17/attach",
    )
    .await;
    assert_eq!(by_key.body, first.body);
    let unknown = get(
        server.ingress,
        "/restate/invocation/Greeter/count/nope/attach",
    )
    .await;
    assert_eq!(unknown.status, 404);

    let other_input = request(server.ingress, "POST", "/Greeter/count", &key, r#""Ed""#).await;
    assert_eq!(other_input.status, 409, "{}", other_input.text());
    assert!(other_input.error_message().contains("order-17"));
    server.stop().await;
}

#[tokio::test]
async fn workflows_run_once_and_answer_by_key() {
    let server = Server::start(small_limits()).await;
    let sent = post(server.ingress, "/Approval/o-1/run/send", r#""order o-1""#).await;
    assert_eq!(
        (sent.status, &sent.json()["status"]),
        (202, &"Accepted".into())
    );
    let early = get(server.ingress, "/restate/workflow/Approval/o-1/output").await;
    assert_eq!(early.status, 470);

    let again = post(server.ingress, "/Approval/o-1/run", r#""order o-1""#).await;
    assert_eq!(again.status, 409, "{}", again.text());
    assert_eq!(
        again.error_message(),
        "the workflow method was already invoked"
    );
    assert_eq!(again.header("x-restate-id"), sent.header("x-restate-id"));
    let resent = post(server.ingress, "/Approval/o-1/run/send", r#""order o-1""#).await;
    assert_eq!(resent.json()["status"], "PreviouslyAccepted");

    let decided = post(server.ingress, "/Approval/o-1/decide", "true").await;
    assert_eq!(decided.status, 200, "{}", decided.text());
    // A handler with no output answers an empty body, as Restate does (not `null`).
    assert!(decided.body.is_empty(), "{:?}", decided.text());
    assert_eq!(decided.header("content-type"), None);
    let attached = get(server.ingress, "/restate/workflow/Approval/o-1/attach").await;
    assert_eq!(attached.json(), "order o-1 approved");
    let output = get(server.ingress, "/restate/workflow/Approval/o-1/output").await;
    assert_eq!(output.json(), "order o-1 approved");

    let keyed = request(
        server.ingress,
        "POST",
        "/Approval/o-2/run",
        &[("idempotency-key", "k")],
        r#""x""#,
    )
    .await;
    assert_eq!(keyed.status, 400);
    assert_eq!(
        get(server.ingress, "/restate/workflow/Approval/o-9/attach")
            .await
            .status,
        404
    );
    assert_eq!(
        get(server.ingress, "/restate/workflow/Nope/o-1/output")
            .await
            .status,
        404
    );
    server.stop().await;
}

/// The id the `Waiter` object published for `key`, read through the admin API.
async fn awakeable_id(server: &Server, key: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = get(server.admin, &format!("/objects/Waiter/{key}/state")).await;
        if let Some(id) = state.json()["state"]["awakeable"].as_str() {
            return id.to_owned();
        }
        assert!(Instant::now() < deadline, "no awakeable id published");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn awakeables_are_resolved_and_rejected_over_http() {
    let server = Server::start(small_limits()).await;
    let sent = post(server.ingress, "/Waiter/w1/wait/send", "").await;
    let waiting = sent.json()["invocationId"].as_str().unwrap().to_owned();
    let id = awakeable_id(&server, "w1").await;

    // A forged id (right shape, wrong secret) and a malformed one: refused, nothing written.
    let before = server.written();
    let mut forged = id.clone();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(forged.len() - 1.., last);
    let reply = post(
        server.ingress,
        &format!("/restate/awakeables/{forged}/resolve"),
        r#""x""#,
    )
    .await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    let reply = post(
        server.ingress,
        "/restate/awakeables/awk_nothex/resolve",
        r#""x""#,
    )
    .await;
    assert_eq!(reply.status, 400);
    let reply = get(server.ingress, &format!("/restate/awakeables/{id}/resolve")).await;
    assert_eq!(reply.status, 405);
    let reply = post(
        server.ingress,
        &format!("/restate/awakeables/{id}/resolve"),
        "{oops",
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(server.written(), before);

    let resolved = post(
        server.ingress,
        &format!("/restate/awakeables/{id}/resolve"),
        r#""paid""#,
    )
    .await;
    assert_eq!((resolved.status, resolved.body.len()), (202, 0));
    let attached = get(
        server.ingress,
        &format!("/restate/invocation/{waiting}/attach"),
    )
    .await;
    assert_eq!(attached.json(), "got paid");
    let twice = post(
        server.ingress,
        &format!("/restate/awakeables/{id}/resolve"),
        r#""again""#,
    )
    .await;
    assert_eq!(twice.status, 409);

    let sent = post(server.ingress, "/Waiter/w2/wait/send", "").await;
    let waiting = sent.json()["invocationId"].as_str().unwrap().to_owned();
    let id = awakeable_id(&server, "w2").await;
    // Restate's short form, which its TypeScript client uses.
    let rejected = post(
        server.ingress,
        &format!("/restate/a/{id}/reject"),
        "card declined",
    )
    .await;
    assert_eq!(rejected.status, 202);
    let output = get(
        server.ingress,
        &format!("/restate/invocation/{waiting}/attach"),
    )
    .await;
    assert_eq!(output.status, 500);
    assert_eq!(output.error_message(), "card declined");
    server.stop().await;
}

#[tokio::test]
async fn failures_carry_their_code_and_the_invocation_id() {
    let server = Server::start(small_limits()).await;
    let reply = post(server.ingress, "/Greeter/refuse", "").await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.error_message(), "not today");
    assert_invocation_id(&reply);
    // The handler's terminal error: Restate's clients read this header and do not retry it.
    assert_eq!(
        reply.header("x-restate-error-source").as_deref(),
        Some("invocation")
    );
    let unknown = post(server.ingress, "/Nope/greet", r#""x""#).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.header("x-restate-error-source").as_deref(),
        Some("ingress")
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_status_and_writes_nothing() {
    let server = Server::start(small_limits()).await;
    post(server.ingress, "/Greeter/greet", r#""warm-up""#).await;
    let before = server.written();
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        (
            "POST",
            "/Greeter/greet",
            r#"{"name": "#.into(),
            400,
            "not valid JSON",
        ),
        ("POST", "/Greeter/greet", "42".into(), 400, "Greeter/greet"),
        (
            "POST",
            "/Nope/greet",
            r#""x""#.into(),
            404,
            "service 'Nope' not found",
        ),
        ("POST", "/Greeter/nope", r#""x""#.into(), 404, "no handler"),
        ("POST", "/Counter/add", "1".into(), 400, "bad path"),
        ("POST", "/Counter", "1".into(), 400, "bad path"),
        (
            "POST",
            "/Greeter/greet/send/more",
            r#""x""#.into(),
            400,
            "bad path",
        ),
        ("PUT", "/Greeter/greet", r#""x""#.into(), 405, "POST"),
        ("DELETE", "/restate/health", String::new(), 405, "GET"),
        (
            "POST",
            "/Greeter/greet",
            format!("\"{}\"", "x".repeat(2000)),
            413,
            "1024 bytes",
        ),
        (
            "POST",
            "/Greeter/greet?delay=5s",
            r#""x""#.into(),
            400,
            "use /send",
        ),
        (
            "POST",
            "/Greeter/greet/send?delay=soon",
            r#""x""#.into(),
            400,
            "delay",
        ),
        (
            "GET",
            "/restate/invocation/inv_zz/attach",
            String::new(),
            400,
            "invocation id",
        ),
        (
            "GET",
            "/restate/invocation/inv_00000000000fffff/output",
            String::new(),
            404,
            "unknown invocation",
        ),
        (
            "GET",
            "/restate/invocation/inv_00000000000fffff/sideways",
            String::new(),
            404,
            "attach",
        ),
        (
            "GET",
            "/restate/nothing",
            String::new(),
            404,
            "no such route",
        ),
        ("GET", "/", String::new(), 404, "no route"),
        ("POST", "/Counter/%FF/add", "1".into(), 400, "UTF-8"),
        (
            "POST",
            "/Greeter/greet",
            format!("{}1{}", "[".repeat(400), "]".repeat(400)),
            400,
            "Greeter/greet",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let reply = request(server.ingress, method, path, &[], body).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
        let message = reply.error_message();
        assert!(
            message.contains(needle),
            "{method} {path}: {message:?} lacks {needle:?}"
        );
        assert!(reply.header("x-restate-id").is_none(), "{method} {path}");
    }
    // Non-UTF-8 bytes in a body, and a body that is not what it announces.
    let reply = request(
        server.ingress,
        "POST",
        "/Greeter/greet",
        &[],
        vec![0xff_u8, 0xfe, 0x22],
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(server.written(), before, "bad input wrote something");
    // The server is still fine.
    assert_eq!(
        post(server.ingress, "/Greeter/greet", r#""Fi""#)
            .await
            .json(),
        "Hello, Fi!"
    );
    server.stop().await;
}

#[tokio::test]
async fn admin_lists_shows_cancels_kills_and_purges() {
    let server = Server::start(small_limits()).await;
    let done = post(server.ingress, "/Greeter/greet", r#""Gu""#).await;
    let done_id = assert_invocation_id(&done);
    let napping = post(server.ingress, "/Greeter/nap/send", "60000")
        .await
        .json()["invocationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let dozing = post(server.ingress, "/Greeter/nap/send", "60000")
        .await
        .json()["invocationId"]
        .as_str()
        .unwrap()
        .to_owned();

    let list = get(
        server.admin,
        "/invocations?service=Greeter&status=completed",
    )
    .await;
    let found = list.json()["invocations"].as_array().unwrap().clone();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], done_id.as_str());
    assert_eq!(found[0]["target"], "Greeter/greet");
    let all = get(server.admin, "/invocations?limit=2").await;
    assert_eq!(all.json()["invocations"].as_array().unwrap().len(), 2);
    assert_eq!(
        get(server.admin, "/invocations?status=sleepy").await.status,
        400
    );
    assert_eq!(
        get(server.admin, "/invocations?colour=red").await.status,
        400
    );

    let shown = get(server.admin, &format!("/invocations/{done_id}"))
        .await
        .json();
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["outcome"]["value"], "Hello, Gu!");
    let shown = get(server.admin, &format!("/invocations/{napping}"))
        .await
        .json();
    assert_eq!(shown["journal"][0]["kind"], "sleep");
    assert_eq!(shown["journal"][0]["result"], serde_json::Value::Null);

    let purge_early = request(
        server.admin,
        "PATCH",
        &format!("/invocations/{napping}/purge"),
        &[],
        "",
    )
    .await;
    assert_eq!(purge_early.status, 409, "{}", purge_early.text());
    let cancelled = request(
        server.admin,
        "PATCH",
        &format!("/invocations/{napping}/cancel"),
        &[],
        "",
    )
    .await;
    assert_eq!(cancelled.status, 202);
    let outcome = get(
        server.ingress,
        &format!("/restate/invocation/{napping}/attach"),
    )
    .await;
    assert_eq!(outcome.status, 409);
    assert_eq!(outcome.error_message(), "cancelled");
    let killed = request(
        server.admin,
        "DELETE",
        &format!("/invocations/{dozing}?mode=kill"),
        &[],
        "",
    )
    .await;
    assert_eq!(killed.status, 202);
    let outcome = get(
        server.ingress,
        &format!("/restate/invocation/{dozing}/attach"),
    )
    .await;
    assert_eq!(
        (outcome.status, outcome.error_message()),
        (409, "killed".into())
    );
    let again = request(
        server.admin,
        "PATCH",
        &format!("/invocations/{dozing}/kill"),
        &[],
        "",
    )
    .await;
    assert_eq!(again.status, 409);

    let purged = request(
        server.admin,
        "PATCH",
        &format!("/invocations/{done_id}/purge"),
        &[],
        "",
    )
    .await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    assert_eq!(
        get(server.admin, &format!("/invocations/{done_id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        get(
            server.ingress,
            &format!("/restate/invocation/{done_id}/output")
        )
        .await
        .status,
        404
    );
    let unknown = request(
        server.admin,
        "PATCH",
        &format!("/invocations/{done_id}/cancel"),
        &[],
        "",
    )
    .await;
    assert_eq!(unknown.status, 404);
    let bogus = request(
        server.admin,
        "PATCH",
        &format!("/invocations/{dozing}/explode"),
        &[],
        "",
    )
    .await;
    assert_eq!(bogus.status, 404);
    assert_eq!(
        request(server.admin, "POST", "/invocations", &[], "")
            .await
            .status,
        405
    );
    assert_eq!(get(server.admin, "/objects/Nope/k/state").await.status, 404);
    assert_eq!(get(server.admin, "/health").await.status, 200);

    assert_eq!(
        get(server.ingress, "/Counter/metered/total").await.json(),
        0
    );
    let metrics = get(server.admin, "/metrics").await;
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text();
    for line in [
        "zeroapp_invocations{status=\"failed\"} 2",
        "zeroapp_invocations{status=\"completed\"} 0",
        "# TYPE zeroapp_writer_batch_size histogram",
        "zeroapp_writer_commit_seconds_bucket{le=\"+Inf\"}",
        "zeroapp_timers_pending ",
        "zeroapp_read_only_calls_total{outcome=\"answered\"} 1\n",
        "zeroapp_read_only_calls_total{outcome=\"durable\"} 0\n",
    ] {
        assert!(text.contains(line), "metrics lack {line:?}:\n{text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish_and_refuses_new_ones() {
    let server = Server::start(small_limits()).await;
    let addr = server.ingress;
    let in_flight = tokio::spawn(async move { post(addr, "/Greeter/nap", "400").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop.cancel();
    let reply = in_flight.await.unwrap();
    assert_eq!((reply.status, reply.json()), (200, "slept 400 ms".into()));
    for server in server.servers {
        server.await.unwrap().unwrap();
    }
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );
    server.engine.shutdown().await;
}

#[tokio::test]
async fn connection_cap_and_idle_timeout() {
    let limits = HttpLimits {
        max_connections: 2,
        idle_timeout: Duration::from_millis(300),
        ..small_limits()
    };
    let server = Server::start(limits).await;
    let mut first = tokio::net::TcpStream::connect(server.ingress)
        .await
        .unwrap();
    let _second = tokio::net::TcpStream::connect(server.ingress)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut third = tokio::net::TcpStream::connect(server.ingress)
        .await
        .unwrap();
    let mut answer = String::new();
    third.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too many connections"));

    // An idle connection is closed once the idle timeout passes; a live one answers first.
    first
        .write_all(b"GET /restate/health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    first.read_to_end(&mut seen).await.unwrap();
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed before idling"
    );
    server.stop().await;
}
