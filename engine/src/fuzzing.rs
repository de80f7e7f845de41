//! Fuzzing harnesses (cargo feature `fuzzing`): the checks the cargo-fuzz targets in `fuzz/`
//! run on each input, kept here so that they can reach crate-private code (the journal codec
//! and the replay machine) and so that `engine/tests/fuzz_regressions.rs` replays the seed
//! corpus and every crash found through the very same code. Not a stable API.
//!
//! Each harness takes arbitrary bytes, reads what it needs from them (missing bytes read as
//! zero), and panics only when a property it checks does not hold.

use crate::TerminalError;
use crate::ids::Target;
use crate::journal::entry::{decode, encode};
use crate::journal::replay::Replay;
use crate::journal::{Completion, Entry, Op, Step};

#[cfg(feature = "http")]
pub use self::ingress::IngressFuzz;

/// Target `log_recovery`: the first byte picks how many records a durable state covers (0 to
/// 3); the rest is the first segment of a log, written to a file as it is. Opening the log must
/// not panic, and must hand back records in sequence after the durable one, whatever the bytes
/// (a torn or damaged tail, zeroes, garbage). An append after the opening must come back, after
/// a reopen, right behind them: the cut tail is overwritten, never left to mislead a reader.
pub fn log_recovery(data: &[u8]) {
    use crate::store::log::{Kind, Log};
    let mut input = Input::new(data);
    let durable = u64::from(input.u8() % 4);
    let segment = input.take(usize::MAX);
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let file = dir.path().join(format!("{:020}.wal", 1));
    if std::fs::write(&file, segment).is_err() {
        return;
    }
    // Small new segments: an append past the given bytes rolls over quickly.
    let Ok((mut log, records)) = Log::open_sized(dir.path(), durable, 4096) else {
        return;
    };
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    let first = durable + 1;
    let expected: Vec<u64> = (first..first + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "records out of sequence");
    let Ok(appended) = log.append(Kind::Batch, b"after recovery") else {
        return;
    };
    assert_eq!(
        appended,
        first + seqs.len() as u64,
        "the append is not next"
    );
    drop(log);
    let Ok((_, again)) = Log::open_sized(dir.path(), durable, 4096) else {
        panic!("the log does not open after an append");
    };
    let mut want = records;
    want.push(crate::store::log::Record {
        seq: appended,
        kind: Kind::Batch,
        payload: b"after recovery".to_vec(),
    });
    assert_eq!(again, want, "the reopened log differs");
}

/// Reads fuzz input as a stream of small values; past its end every read is zero or empty.
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = tail;
        head
    }

    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn u64(&mut self) -> u64 {
        let mut buf = [0u8; 8];
        let head = self.take(8);
        buf[..head.len()].copy_from_slice(head);
        u64::from_le_bytes(buf)
    }

    fn u128(&mut self) -> u128 {
        (u128::from(self.u64()) << 64) | u128::from(self.u64())
    }

    /// A short string: usually one of a few names (so that operations repeat and match), else
    /// up to 15 bytes of the input, lossily decoded.
    fn name(&mut self) -> String {
        const NAMES: [&str; 4] = ["a", "b", "charge", "ship"];
        let pick = self.u8();
        match NAMES.get(usize::from(pick % 8)) {
            Some(name) => (*name).to_owned(),
            None => String::from_utf8_lossy(self.take(usize::from(pick >> 4))).into_owned(),
        }
    }

    fn target(&mut self) -> Target {
        let service = self.name();
        let handler = self.name();
        if self.u8() % 2 == 0 {
            Target::service(service, handler)
        } else {
            Target::object(service, self.name(), handler)
        }
    }

    /// An operation; `chosen` fills what is chosen at execution time (a call's callee, a
    /// timer's deadline, an awakeable's secret), which is not part of the operation's identity.
    fn op(&mut self, chosen: u64) -> Op {
        match self.u8() % 18 {
            0 => Op::Run { name: self.name() },
            1 => Op::GetState { key: self.name() },
            2 => Op::GetStateKeys,
            3 => Op::SetState { key: self.name() },
            4 => Op::ClearState { key: self.name() },
            5 => Op::ClearAllState,
            6 => Op::Call {
                target: self.target(),
                callee: chosen,
            },
            7 => Op::Send {
                target: self.target(),
                callee: chosen,
            },
            8 => Op::Rand,
            9 => Op::Uuid,
            10 => Op::Now,
            11 => Op::Sleep { wake_at_ms: chosen },
            12 => Op::Awakeable {
                secret: self.u128() ^ u128::from(chosen),
            },
            13 => Op::CompleteAwakeable { id: self.name() },
            14 => Op::GetPromise { name: self.name() },
            15 => Op::PeekPromise { name: self.name() },
            16 => Op::CompletePromise { name: self.name() },
            _ => {
                let len = usize::from(self.u8() % 4);
                Op::Select {
                    of: self.take(len).iter().map(|&i| u32::from(i)).collect(),
                }
            }
        }
    }

    fn completion(&mut self) -> Option<Completion> {
        match self.u8() % 4 {
            0 => None,
            1 => Some(Completion::Empty),
            2 => {
                let len = usize::from(self.u8());
                Some(Completion::Value(self.take(len).to_vec()))
            }
            _ => {
                let code = u16::from_le_bytes([self.u8(), self.u8()]);
                Some(Completion::Failure(TerminalError::with_code(
                    code,
                    self.name(),
                )))
            }
        }
    }

    fn entry(&mut self) -> Entry {
        let chosen = self.u64();
        Entry {
            op: self.op(chosen),
            at_ms: self.u64(),
            attempt: u32::from(self.u8()),
            completion: self.completion(),
        }
    }
}

/// Target `journal_decode`: the first byte picks the check.
///
/// * odd: the rest is decoded as a journal entry. Decoding must not panic (nor abort on a
///   huge allocation), and an entry that decodes must encode and decode to itself.
/// * even: an entry is built from the rest (every variant, extreme numbers, odd strings) and
///   must round-trip through the codec unchanged, and every strict prefix of its encoding
///   must fail to decode.
pub fn journal_decode(data: &[u8]) {
    let mut input = Input::new(data);
    if input.u8() % 2 == 1 {
        let rest = input.take(usize::MAX);
        if let Ok(entry) = decode::<Entry>(rest) {
            let again = decode::<Entry>(&encode(&entry));
            assert_eq!(
                again.as_ref().ok(),
                Some(&entry),
                "decoded entry does not round-trip"
            );
        }
        return;
    }
    let entry = input.entry();
    let bytes = encode(&entry);
    match decode::<Entry>(&bytes) {
        Ok(decoded) => assert_eq!(decoded, entry, "entry does not round-trip"),
        Err(e) => panic!("an encoded entry does not decode: {e} ({entry:?})"),
    }
    for len in 0..bytes.len() {
        assert!(
            decode::<Entry>(&bytes[..len]).is_err(),
            "a {len}-byte prefix of {} bytes decodes ({entry:?})",
            bytes.len()
        );
    }
}

/// One event of the `replay` target.
#[derive(Debug)]
enum Event {
    /// The handler issues its next operation (a new one is appended to its code if it has run
    /// out of code).
    Issue,
    /// One of the live entries not yet committed is committed (any of them: concurrent
    /// operations commit out of order, leaving holes).
    Commit(u8),
    /// The process crashes: uncommitted entries are lost, the journal is what was committed,
    /// and a new execution replays it from the start.
    Crash,
    /// The code changes: the operation at this position of the code is replaced (usually by
    /// another one, so that replaying it is a mismatch).
    ChangeCode(u8),
}

/// The model's notion of "the same operation": same kind and same identifying fields,
/// whatever was chosen at execution time (a call's callee, a timer's deadline, an awakeable's
/// secret). Written out here rather than calling `Op::matches`, which it checks.
fn same_operation(recorded: &Op, issued: &Op) -> bool {
    match (recorded, issued) {
        (Op::Call { target: a, .. }, Op::Call { target: b, .. })
        | (Op::Send { target: a, .. }, Op::Send { target: b, .. }) => a == b,
        (Op::Sleep { .. }, Op::Sleep { .. }) | (Op::Awakeable { .. }, Op::Awakeable { .. }) => true,
        (a, b) => a == b,
    }
}

/// Target `replay`: the replay machine (`journal::replay::Replay`) driven by a random
/// sequence of events against a reference model — the handler's code as a list of operations,
/// the committed journal as a map from index to entry, and the live entries of the current
/// execution not yet committed.
///
/// For every issued operation at index `i`, replay must answer: `Replayed(i, e)` with the
/// committed entry `e` if one is at `i` and it is the same operation, `Mismatch` at `i` if it
/// is another one, and `Live(i)` if nothing was committed at `i`; `i` counts from 0 in each
/// execution, one per issued operation.
pub fn replay(data: &[u8]) {
    let mut input = Input::new(data);
    let mut code: Vec<Op> = Vec::new();
    let mut journal: std::collections::BTreeMap<u32, Entry> = Default::default();
    let mut pending: Vec<(u32, Entry)> = Vec::new();
    let mut replay = Replay::new(journal.clone());
    let mut next: u32 = 0;
    let mut chosen: u64 = 1;
    let mut events = 0;
    while !input.is_empty() && events < 4096 {
        events += 1;
        let event = match input.u8() % 8 {
            0..=3 => Event::Issue,
            4 | 5 => Event::Commit(input.u8()),
            6 => Event::Crash,
            _ => Event::ChangeCode(input.u8()),
        };
        match event {
            Event::Issue => {
                let position = next as usize;
                if position >= code.len() {
                    code.push(input.op(0));
                }
                // What is chosen at execution time differs in every execution.
                chosen += 1;
                let issued = with_chosen(&code[position], chosen);
                let expected = journal.get(&next).cloned();
                let step = replay.issue(&issued);
                match (expected, step) {
                    (None, Step::Live(index)) => {
                        assert_eq!(index, next, "live at the wrong index");
                        pending.push((
                            index,
                            Entry {
                                op: issued,
                                at_ms: chosen,
                                attempt: 1,
                                completion: input.completion(),
                            },
                        ));
                    }
                    (Some(recorded), Step::Replayed(index, entry)) => {
                        assert_eq!(index, next, "replayed at the wrong index");
                        assert_eq!(entry, recorded, "replayed another entry than the recorded");
                        assert!(
                            same_operation(&recorded.op, &issued),
                            "replayed {:?} for the different {issued:?}",
                            entry.op
                        );
                    }
                    (
                        Some(recorded),
                        Step::Mismatch {
                            index,
                            recorded: r,
                            issued: i,
                        },
                    ) => {
                        assert_eq!(index, next, "mismatch at the wrong index");
                        assert!(
                            !same_operation(&recorded.op, &issued),
                            "mismatch for the same operation {issued:?}"
                        );
                        assert_eq!(r, recorded.op.describe());
                        assert_eq!(i, issued.describe());
                    }
                    (expected, step) => {
                        panic!("at index {next}: journal has {expected:?}, replay said {step:?}")
                    }
                }
                next += 1;
            }
            Event::Commit(which) => {
                if !pending.is_empty() {
                    let (index, entry) = pending.remove(usize::from(which) % pending.len());
                    journal.insert(index, entry);
                }
            }
            Event::Crash => {
                pending.clear();
                replay = Replay::new(journal.clone());
                next = 0;
            }
            Event::ChangeCode(at) => {
                if !code.is_empty() {
                    let at = usize::from(at) % code.len();
                    let new = input.op(0);
                    code[at] = new;
                }
            }
        }
        assert_eq!(replay.next_index(), next, "next index");
        assert_eq!(
            replay.is_replaying(),
            journal.range(next..).next().is_some(),
            "is_replaying with next index {next} and journal indices {:?}",
            journal.keys().collect::<Vec<_>>()
        );
    }
}

/// `op` with `chosen` in the fields chosen at execution time.
fn with_chosen(op: &Op, chosen: u64) -> Op {
    match op.clone() {
        Op::Call { target, .. } => Op::Call {
            target,
            callee: chosen,
        },
        Op::Send { target, .. } => Op::Send {
            target,
            callee: chosen,
        },
        Op::Sleep { .. } => Op::Sleep { wake_at_ms: chosen },
        Op::Awakeable { .. } => Op::Awakeable {
            secret: u128::from(chosen).rotate_left(64) | u128::from(chosen),
        },
        other => other,
    }
}

/// Target `datastar_signals`: `parse` is the storefront's Datastar signal parsing
/// (`zeroapp_web::pages::parse_signals`, passed in because the engine cannot depend on the
/// web crate), given `data` as a command's body and, when `data` is a query string carrying
/// `datastar=` (how Datastar sends signals on a GET), that parameter's percent-decoded value.
///
/// It must not panic; what it accepts must be a JSON object equal to the signals it returned,
/// or a blank body and no signals; what it refuses must not be a JSON object.
pub fn datastar_signals<E: std::fmt::Debug>(
    data: &[u8],
    parse: impl Fn(&[u8]) -> Result<serde_json::Map<String, serde_json::Value>, E>,
) {
    check_signals(data, &parse);
    #[cfg(feature = "http")]
    if let Ok(query) = std::str::from_utf8(data) {
        let query = query.strip_prefix('?').unwrap_or(query);
        for (key, value) in crate::http::query_pairs(query) {
            if key == "datastar" {
                check_signals(value.as_bytes(), &parse);
            }
        }
    }
}

fn check_signals<E: std::fmt::Debug>(
    body: &[u8],
    parse: &impl Fn(&[u8]) -> Result<serde_json::Map<String, serde_json::Value>, E>,
) {
    let as_json = serde_json::from_slice::<serde_json::Value>(body);
    match parse(body) {
        Ok(signals) if body.iter().all(u8::is_ascii_whitespace) => {
            assert!(signals.is_empty(), "signals from a blank body: {signals:?}");
        }
        Ok(signals) => match as_json {
            Ok(value) => assert_eq!(
                value,
                serde_json::Value::Object(signals),
                "accepted signals differ from the JSON of the body"
            ),
            Err(e) => panic!("accepted signals {signals:?} from a body that is not JSON: {e}"),
        },
        Err(error) => assert!(
            !matches!(as_json, Ok(serde_json::Value::Object(_))),
            "a JSON object refused: {error:?}"
        ),
    }
}

#[cfg(feature = "http")]
mod ingress {
    //! Target `ingress`: requests through the real ingress routes of a real engine.

    use std::convert::Infallible;
    use std::path::Path;
    use std::sync::Mutex;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::header::{HeaderName, HeaderValue};
    use hyper::{Method, Uri};
    use hyper_util::rt::TokioIo;

    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::http::{BearerToken, HttpLimits, Routes, require_bearer};
    use crate::prelude::*;
    use crate::{Engine, OpenError};

    /// Ids of the awakeables the `Waiter` service created, so inputs can complete real ones.
    static AWAKEABLES: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// How long a request may take; a call waiting for an awakeable or a promise waits until
    /// someone completes it, so a request that takes longer is given up (not a failure).
    const REQUEST_TIMEOUT: Duration = Duration::from_millis(100);

    /// Separates the requests of one input.
    const SEPARATOR: &[u8] = b"\n~~~\n";

    async fn greet(_ctx: Context, name: String) -> Result<String, HandlerError> {
        Ok(format!("Hello, {name}!"))
    }

    /// Times the private `Vault/open` ran: a request from outside must never make it run.
    static VAULT_OPENED: AtomicU64 = AtomicU64::new(0);

    /// The token of the guarded copy of the ingress; `{token}` in a header value becomes it.
    const TOKEN: &str = "fuzz-ingress-token-0123456789";

    async fn open(_ctx: Context, (): ()) -> Result<(), HandlerError> {
        VAULT_OPENED.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn refuse(_ctx: Context, code: u16) -> Result<(), HandlerError> {
        // Codes from the input, kept among client errors: a 5xx here would be the handler's.
        Err(TerminalError::with_code(400 + code % 100, "refused").into())
    }

    async fn step(ctx: Context, n: u64) -> Result<u64, HandlerError> {
        let doubled = ctx
            .run("double", move || async move { Ok(n.wrapping_mul(2)) })
            .await?;
        Ok(doubled)
    }

    async fn wait(ctx: Context, (): ()) -> Result<String, HandlerError> {
        let (id, value) = ctx.awakeable::<serde_json::Value>();
        if let Ok(mut ids) = AWAKEABLES.lock() {
            ids.push(id);
        }
        Ok(format!("got {}", value.await?))
    }

    async fn add(ctx: ObjectContext, amount: i64) -> Result<i64, HandlerError> {
        let total = ctx
            .get::<i64>("total")
            .await?
            .unwrap_or(0)
            .saturating_add(amount);
        ctx.set("total", &total)?;
        Ok(total)
    }

    async fn total(ctx: SharedObjectContext, (): ()) -> Result<i64, HandlerError> {
        Ok(ctx.get::<i64>("total").await?.unwrap_or(0))
    }

    async fn approval(ctx: WorkflowContext, order: String) -> Result<String, HandlerError> {
        ctx.set("order", &order)?;
        let approved: bool = ctx.promise("decision").await?;
        Ok(format!("{order} {approved}"))
    }

    async fn decide(ctx: SharedWorkflowContext, approved: bool) -> Result<(), HandlerError> {
        ctx.resolve_promise("decision", &approved).await?;
        Ok(())
    }

    /// A real engine with a few handlers (a service with a step, a refusal and an awakeable;
    /// an object; a workflow waiting on a promise) and its ingress routes.
    pub struct IngressFuzz {
        engine: Engine,
        routes: Routes,
        /// The same routes behind a bearer token.
        guarded: Routes,
    }

    impl IngressFuzz {
        /// Opens the engine on `dir` (call it inside a tokio runtime that then runs every
        /// [`IngressFuzz::run`]).
        pub async fn open(dir: &Path) -> Result<Self, OpenError> {
            let engine = Engine::builder()
                .register(
                    Service::new("Greeter")
                        .handler("greet", greet)
                        .handler("refuse", refuse)
                        .handler("step", step)
                        .handler("wait", wait),
                )
                .register(
                    VirtualObject::new("Counter")
                        .exclusive("add", add)
                        .shared("total", total),
                )
                .register(
                    Workflow::new("Approval")
                        .run(approval)
                        .shared("decide", decide),
                )
                .register(
                    Service::new("Vault")
                        .handler("open", open)
                        .ingress_private(),
                )
                .inactivity_timeout(Duration::from_millis(200))
                .retention(Duration::from_secs(5))
                .retry_policy(
                    RetryPolicy::exponential(Duration::from_millis(5))
                        .max_delay(Duration::from_millis(50)),
                )
                .open(dir)
                .await?;
            let routes = crate::http::ingress(&engine, &HttpLimits::default());
            let token = BearerToken::new(TOKEN).map_err(|e| OpenError::Io {
                path: dir.to_owned(),
                source: std::io::Error::other(e),
            })?;
            let guarded =
                require_bearer(routes.clone(), token, &["/restate/health"], Some("ingress"));
            Ok(Self {
                engine,
                routes,
                guarded,
            })
        }

        /// Shuts the engine down.
        pub async fn shutdown(self) {
            self.engine.shutdown().await;
        }

        /// Sends the requests in `data` (separated by a line `~~~`), each written as
        /// `METHOD PATH?QUERY`, header lines `name: value`, an empty line and the body. In the
        /// path, `{awk}` becomes the id of an awakeable a `Greeter/wait` created, and `{inv}`
        /// the last `x-restate-id` answered. Requests that hyper's client cannot send are
        /// skipped. Every answer must be: not 5xx, unless it is an invocation's own outcome
        /// (`x-restate-id`, code 500: an awakeable rejected); and for 4xx and 5xx, a JSON
        /// body `{"code": status, "message": …}`. A request without an `authorization` header
        /// goes first to the guarded copy of the ingress, which must answer 401 (but for its
        /// health check); one with it (`{token}` in a header value becomes the token) goes
        /// there only. The private `Vault/open` never runs.
        ///
        /// Returns the status of each answer (0 for a request skipped or given up).
        pub async fn run(&self, data: &[u8]) -> Vec<u16> {
            let mut statuses = Vec::new();
            let mut last_invocation = String::from("inv_0000000000000001");
            for (n, raw) in split(data).into_iter().take(4).enumerate() {
                let awakeable = AWAKEABLES
                    .lock()
                    .ok()
                    .and_then(|ids| ids.iter().rev().nth(n).or(ids.last()).cloned())
                    .unwrap_or_else(|| format!("awk_{}", "0".repeat(56)));
                statuses.push(0);
                let Some(request) = parse(raw, &awakeable, &last_invocation) else {
                    continue;
                };
                let described = format!("{} {}", request.method(), request.uri());
                let routes = if request.headers().contains_key("authorization") {
                    &self.guarded
                } else {
                    let open = request.method() == Method::GET
                        && request.uri().path() == "/restate/health";
                    if !open {
                        let refused = self.send(&self.guarded, request).await;
                        if let Some((status, headers, body)) = &refused {
                            assert_eq!(status.as_u16(), 401, "{described} without a token");
                            check(&described, *status, headers, body);
                        }
                    }
                    &self.routes
                };
                let Some(request) = parse(raw, &awakeable, &last_invocation) else {
                    continue;
                };
                #[allow(clippy::disallowed_methods)] // a hung request, in real time
                let sent = tokio::time::timeout(REQUEST_TIMEOUT, self.send(routes, request)).await;
                assert_eq!(
                    VAULT_OPENED.load(Ordering::SeqCst),
                    0,
                    "{described}: a private handler ran"
                );
                let Ok(Some((status, headers, body))) = sent else {
                    continue;
                };
                statuses[n] = status.as_u16();
                if let Some(id) = headers.get("x-restate-id").and_then(|v| v.to_str().ok()) {
                    last_invocation = id.to_owned();
                }
                check(&described, status, &headers, &body);
            }
            statuses
        }

        /// One request over an in-memory connection into the routes; `None` if the
        /// connection failed (hyper refused the request before the routes saw it).
        async fn send(
            &self,
            routes: &Routes,
            request: hyper::Request<Full<Bytes>>,
        ) -> Option<(hyper::StatusCode, hyper::HeaderMap, Bytes)> {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let routes = routes.clone();
            let service = hyper::service::service_fn(move |request| {
                let answer = routes(request);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            // Server and client are polled by this task, not spawned: a panic in the routes
            // reaches the fuzzer.
            let server = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server), service);
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(client))
                    .await
                    .ok()?;
            let exchange = async move {
                let response = sender.send_request(request).await.ok()?;
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.into_body().collect().await.ok()?.to_bytes();
                // Dropping the sender closes the connection, which ends both sides.
                drop(sender);
                Some((status, headers, body))
            };
            let (answer, _, _) = tokio::join!(exchange, connection, server);
            answer
        }
    }

    /// The properties every answer must have.
    fn check(request: &str, status: hyper::StatusCode, headers: &hyper::HeaderMap, body: &[u8]) {
        let code = status.as_u16();
        let outcome_of_invocation = headers.contains_key("x-restate-id");
        assert!(
            code < 500 || (code == 500 && outcome_of_invocation),
            "{request}: {code} {}",
            String::from_utf8_lossy(body)
        );
        if code >= 400 {
            let json: serde_json::Value = match serde_json::from_slice(body) {
                Ok(json) => json,
                Err(e) => panic!(
                    "{request}: {code} with a body that is not JSON ({e}): {}",
                    String::from_utf8_lossy(body)
                ),
            };
            assert_eq!(
                json.get("code").and_then(serde_json::Value::as_u64),
                Some(u64::from(code)),
                "{request}: {code} {json}"
            );
            assert!(
                json.get("message")
                    .is_some_and(serde_json::Value::is_string),
                "{request}: {code} {json}"
            );
        }
    }

    fn split(data: &[u8]) -> Vec<&[u8]> {
        let mut parts = Vec::new();
        let mut rest = data;
        while let Some(at) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            parts.push(&rest[..at]);
            rest = &rest[at + SEPARATOR.len()..];
        }
        parts.push(rest);
        parts
    }

    /// A request from its text form; `None` if hyper's client cannot express it.
    fn parse(raw: &[u8], awakeable: &str, invocation: &str) -> Option<hyper::Request<Full<Bytes>>> {
        let (head, body) = match raw.windows(2).position(|w| w == b"\n\n") {
            Some(at) => (&raw[..at], &raw[at + 2..]),
            None => (raw, &[][..]),
        };
        let mut lines = head.split(|&b| b == b'\n');
        let first = lines.next()?;
        let space = first.iter().position(|&b| b == b' ')?;
        let method = Method::from_bytes(&first[..space]).ok()?;
        let target = String::from_utf8_lossy(&first[space + 1..])
            .replace("{awk}", awakeable)
            .replace("{inv}", invocation);
        let uri: Uri = target.parse().ok()?;
        uri.path_and_query()?;
        if uri.scheme().is_some() || uri.authority().is_some() {
            return None;
        }
        let mut request = hyper::Request::builder().method(method).uri(uri);
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let value =
                String::from_utf8_lossy(line[colon + 1..].trim_ascii()).replace("{token}", TOKEN);
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&line[..colon]),
                HeaderValue::from_str(&value),
            ) else {
                continue;
            };
            // The connection's framing is hyper's business, not the routes'.
            if [
                "content-length",
                "transfer-encoding",
                "connection",
                "upgrade",
                "expect",
                "te",
            ]
            .contains(&name.as_str())
            {
                continue;
            }
            request = request.header(name, value);
        }
        request
            .header("host", "fuzz")
            .body(Full::new(Bytes::copy_from_slice(body)))
            .ok()
    }
}
