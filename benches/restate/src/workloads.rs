//! The workloads, each as one operation a closed-loop worker repeats: over HTTP on Restate's
//! ingress paths (the same requests for the engine's ingress and for a Restate server), and
//! in-process through the engine's [`Client`].

use std::fmt;
use std::time::Duration;

use hyper::StatusCode;
use zeroapp_engine::{Client, Target};

use super::services::{APPROVAL, AWAKE_FLOW, BENCH, COUNTER, SLEEP, SLEEPER};
use zeroapp_benches::engine::{HANDLER, expected_output};
use zeroapp_benches::http_load::HttpConnection;
use zeroapp_benches::load::{Outcome, Worker};

/// Keys W2 spreads its calls over.
pub const SPREAD_KEYS: u64 = 1_000;

/// One workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// W1: a service handler with three `run` steps returning small strings.
    ThreeSteps,
    /// W2: a virtual object's exclusive `add` on one key: every call waits for the one before.
    CounterHot,
    /// W2: the same `add` spread over [`SPREAD_KEYS`] keys.
    CounterSpread,
    /// W3: an awakeable round trip. Send the workflow `AwakeFlow/{key}/run` (which creates an
    /// awakeable and publishes its id in a durable promise), call its shared handler
    /// `awakeable_id` (which waits for that promise), resolve the awakeable with the id it
    /// returned, then attach to the run's result.
    Awakeable,
    /// W4: send the workflow `Approval/{key}/run` (which waits for its durable promise), call
    /// the shared handler `approve` (which resolves it), then attach to the run's result.
    Promise,
    /// W5: a handler sleeping 100 ms; its figures are lateness (latency − 100 ms).
    Sleep,
}

impl Workload {
    /// All of them, in the report's order.
    pub const ALL: [Workload; 6] = [
        Workload::ThreeSteps,
        Workload::CounterHot,
        Workload::CounterSpread,
        Workload::Awakeable,
        Workload::Promise,
        Workload::Sleep,
    ];

    /// A short name for tables and JSON.
    pub fn id(self) -> &'static str {
        match self {
            Workload::ThreeSteps => "W1 three run steps",
            Workload::CounterHot => "W2 counter, one key",
            Workload::CounterSpread => "W2 counter, 1,000 keys",
            Workload::Awakeable => "W3 awakeable round trip",
            Workload::Promise => "W4 workflow promise",
            Workload::Sleep => "W5 sleep 100 ms lateness",
        }
    }

    /// What latencies are reduced by before percentiles: the sleep itself for W5.
    pub fn latency_offset(self) -> Duration {
        if self == Workload::Sleep {
            SLEEP
        } else {
            Duration::ZERO
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Where a worker's keys come from: unique per run (workflows run once per key, and a Restate
/// server keeps its keys across points), per worker, per operation.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Unique to this point of this run.
    pub prefix: String,
    /// The worker's number.
    pub worker: usize,
    /// Operations this worker started.
    pub count: u64,
}

impl Keys {
    /// A fresh key for a workflow.
    fn next(&mut self) -> String {
        self.count += 1;
        format!("{}-{}-{}", self.prefix, self.worker, self.count)
    }

    /// The next key of W2 spread over [`SPREAD_KEYS`] keys.
    fn spread(&mut self) -> String {
        self.count += 1;
        let n = (self.worker as u64 * 7_919 + self.count) % SPREAD_KEYS;
        format!("k{n}")
    }
}

/// A closed-loop worker sending a workload's requests over one keep-alive connection.
pub struct HttpWorker {
    workload: Workload,
    connection: HttpConnection,
    keys: Keys,
}

impl HttpWorker {
    /// Connects to `address` (`127.0.0.1:port`, an ingress).
    pub async fn open(workload: Workload, address: &str, keys: Keys) -> Result<Self, String> {
        Ok(Self {
            workload,
            connection: HttpConnection::open(address).await?,
            keys,
        })
    }

    /// One operation of the workload. A status other than the expected one is an
    /// [`Outcome::Error`]; a wrong body fails the run.
    async fn operation(&mut self) -> Result<Outcome, String> {
        let c = &mut self.connection;
        match self.workload {
            Workload::ThreeSteps => {
                let (status, body) = c.post(&format!("/{BENCH}/{HANDLER}"), "\"in\"").await?;
                expect_body(status, &body, &format!("\"{}\"", expected_output("in")))
            }
            Workload::CounterHot => {
                let (status, _) = c.post(&format!("/{COUNTER}/hot/add"), "1").await?;
                Ok(ok(status))
            }
            Workload::CounterSpread => {
                let key = self.keys.spread();
                let (status, _) = c.post(&format!("/{COUNTER}/{key}/add"), "1").await?;
                Ok(ok(status))
            }
            Workload::Awakeable => {
                let key = self.keys.next();
                let (status, _) = c
                    .post(&format!("/{AWAKE_FLOW}/{key}/run/send"), "\"x\"")
                    .await?;
                if !status.is_success() {
                    return Ok(Outcome::Error);
                }
                let (status, id) = c
                    .post(&format!("/{AWAKE_FLOW}/{key}/awakeable_id"), "\"x\"")
                    .await?;
                if status != StatusCode::OK {
                    return Ok(Outcome::Error);
                }
                let id = json_string(&id)?;
                let (status, _) = c
                    .post(&format!("/restate/awakeables/{id}/resolve"), "\"done\"")
                    .await?;
                if !status.is_success() {
                    return Ok(Outcome::Error);
                }
                let (status, body) = c
                    .get(&format!("/restate/workflow/{AWAKE_FLOW}/{key}/attach"))
                    .await?;
                expect_body(status, &body, "\"done\"")
            }
            Workload::Promise => {
                let key = self.keys.next();
                let (status, _) = c
                    .post(&format!("/{APPROVAL}/{key}/run/send"), "\"x\"")
                    .await?;
                if !status.is_success() {
                    return Ok(Outcome::Error);
                }
                let (status, _) = c
                    .post(&format!("/{APPROVAL}/{key}/approve"), "\"yes\"")
                    .await?;
                if status != StatusCode::OK {
                    return Ok(Outcome::Error);
                }
                let (status, body) = c
                    .get(&format!("/restate/workflow/{APPROVAL}/{key}/attach"))
                    .await?;
                expect_body(status, &body, "\"yes\"")
            }
            Workload::Sleep => {
                let (status, body) = c.post(&format!("/{SLEEPER}/sleep"), "\"z\"").await?;
                expect_body(status, &body, "\"z\"")
            }
        }
    }
}

impl Worker for HttpWorker {
    async fn call(&mut self) -> Result<Outcome, String> {
        self.operation().await
    }
}

fn ok(status: StatusCode) -> Outcome {
    if status == StatusCode::OK {
        Outcome::Done
    } else {
        Outcome::Error
    }
}

fn expect_body(status: StatusCode, body: &[u8], expected: &str) -> Result<Outcome, String> {
    if status != StatusCode::OK {
        return Ok(Outcome::Error);
    }
    if body != expected.as_bytes() {
        return Err(format!(
            "unexpected answer {:?}, expected {expected}",
            String::from_utf8_lossy(body)
        ));
    }
    Ok(Outcome::Done)
}

/// The string in a JSON string body (`"abc"` → `abc`), which must need no unescaping.
fn json_string(body: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("an id that is not UTF-8: {e}"))?;
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.contains(['"', '\\', '/']))
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a JSON string id, got {text:?}"))
}

/// A closed-loop worker calling a workload in-process through the engine's [`Client`].
pub struct ClientWorker {
    workload: Workload,
    client: Client,
    keys: Keys,
}

impl ClientWorker {
    /// A worker on `client`.
    pub fn new(workload: Workload, client: Client, keys: Keys) -> Self {
        Self {
            workload,
            client,
            keys,
        }
    }

    async fn operation(&mut self) -> Result<(), String> {
        let fail = |e: zeroapp_engine::CallError| e.to_string();
        let c = &self.client;
        match self.workload {
            Workload::ThreeSteps => {
                let out: String = c
                    .call(Target::service(BENCH, HANDLER), &"in")
                    .await
                    .map_err(fail)?;
                check(&out, &expected_output("in"))
            }
            Workload::CounterHot => {
                let _: i64 = c
                    .call(Target::object(COUNTER, "hot", "add"), &1i64)
                    .await
                    .map_err(fail)?;
                Ok(())
            }
            Workload::CounterSpread => {
                let key = self.keys.spread();
                let _: i64 = c
                    .call(Target::object(COUNTER, key, "add"), &1i64)
                    .await
                    .map_err(fail)?;
                Ok(())
            }
            Workload::Awakeable => {
                let key = self.keys.next();
                c.submit_workflow(AWAKE_FLOW, &key, &"x")
                    .await
                    .map_err(fail)?;
                let id: String = c
                    .call(Target::workflow(AWAKE_FLOW, &key, "awakeable_id"), &"x")
                    .await
                    .map_err(fail)?;
                c.resolve_awakeable(&id, &"done").await.map_err(fail)?;
                let out: String = c.attach_workflow(AWAKE_FLOW, &key).await.map_err(fail)?;
                check(&out, "done")
            }
            Workload::Promise => {
                let key = self.keys.next();
                c.submit_workflow(APPROVAL, &key, &"x")
                    .await
                    .map_err(fail)?;
                let _: String = c
                    .call(Target::workflow(APPROVAL, &key, "approve"), &"yes")
                    .await
                    .map_err(fail)?;
                let out: String = c.attach_workflow(APPROVAL, &key).await.map_err(fail)?;
                check(&out, "yes")
            }
            Workload::Sleep => {
                let out: String = c
                    .call(Target::service(SLEEPER, "sleep"), &"z")
                    .await
                    .map_err(fail)?;
                check(&out, "z")
            }
        }
    }
}

fn check(got: &str, expected: &str) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("unexpected output {got:?}, expected {expected:?}"))
    }
}

impl Worker for ClientWorker {
    async fn call(&mut self) -> Result<Outcome, String> {
        self.operation().await.map(|()| Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_out_of_json_strings() {
        assert_eq!(json_string(b"\"sign_1abc\"").unwrap(), "sign_1abc");
        assert!(json_string(b"sign_1abc").is_err());
        assert!(json_string(b"\"a/b\"").is_err());
    }

    #[test]
    fn spread_keys_stay_in_range_and_workflow_keys_are_unique() {
        let mut keys = Keys {
            prefix: "p".to_owned(),
            worker: 3,
            count: 0,
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2_000 {
            let k = keys.spread();
            let n: u64 = k[1..].parse().unwrap();
            assert!(n < SPREAD_KEYS);
            seen.insert(k);
        }
        assert_eq!(seen.len() as u64, SPREAD_KEYS);
        assert_ne!(keys.next(), keys.next());
    }
}
