// Drives an ingress with Restate's official TypeScript client, unchanged, and prints a
// transcript: for every step, what the client returned or threw, whether that is what the step
// expects of ZeroApp, and every HTTP exchange under it (method, path, status, the headers
// clients read, the body). Ids and times are normalized, so that two transcripts can be
// compared: restate/tests/conformance.rs runs this script against the engine and against a real
// restate-server serving the same handlers written on Restate's SDK, and reports every
// difference that restate/tests/conformance/differences.json does not list.
//
// Usage: node client.mjs http://127.0.0.1:PORT  (the transcript goes to stdout, as JSON)

import * as clients from "@restatedev/restate-sdk-clients";

const url = process.argv[2];
if (!url) {
  console.error("usage: node client.mjs INGRESS_URL");
  process.exit(2);
}
// A run's keys are unique, so that the script can be run twice against one server.
const run = Math.random().toString(36).slice(2, 10);

let exchanges = [];
async function recordingFetch(input, init = {}) {
  const response = await fetch(input, init);
  const target = new URL(typeof input === "string" ? input : input.url);
  const copy = response.clone();
  const bytes = new Uint8Array(await copy.arrayBuffer());
  exchanges.push({
    request: `${init.method ?? "GET"} ${normalize(target.pathname + target.search)}`,
    status: response.status,
    "content-type": response.headers.get("content-type"),
    "x-restate-error-source": response.headers.get("x-restate-error-source"),
    "x-restate-id": response.headers.get("x-restate-id") === null ? null : "present",
    body: describeBody(bytes, response.headers.get("content-type")),
  });
  return response;
}

/// Ids differ between engines and runs; times differ always.
function normalize(text) {
  return text
    .replaceAll(run, "RUN")
    .replace(/inv_[0-9A-Za-z]+/g, "inv_ID")
    .replace(/(awk|prom|sign)_[0-9A-Za-z_-]+/g, "AWAKEABLE_ID")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, "TIME");
}

/// A body as the comparison sees it: JSON normalized; an error's message only where it is the
/// handler's own (from the invocation): the ingress's messages are written for people, in each
/// engine's words.
function describeBody(bytes, contentType) {
  if (bytes.length === 0) return { empty: true };
  const text = new TextDecoder().decode(bytes);
  if (!(contentType ?? "").includes("json")) {
    return { bytes: Array.from(bytes) };
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return { notJson: normalize(text) };
  }
  if (value && typeof value === "object" && "message" in value && value.source !== "invocation") {
    value.message = "(the ingress's words)";
  }
  return { json: JSON.parse(normalize(JSON.stringify(value))) };
}

const ingress = clients.connect({ url, fetch: recordingFetch, retry: true });
const ingressNoRetry = clients.connect({ url, fetch: recordingFetch });
// Polling is not compared: how many polls it takes depends on timing.
const unrecorded = clients.connect({ url });
const Greeter = { name: "Greeter" };
const Counter = { name: "Counter" };
const Signup = { name: "Signup" };
const Waiter = { name: "Waiter" };
const Mailbox = { name: "Mailbox" };
const steps = [];

/// Runs one step: `body` returns the client's value (or throws), `expect` says whether that is
/// what ZeroApp must answer.
async function step(name, body, expect) {
  exchanges = [];
  let outcome;
  try {
    outcome = { value: await body() };
  } catch (error) {
    outcome = {
      error: {
        kind: error?.constructor?.name ?? "Error",
        status: error?.status ?? null,
      },
    };
  }
  let ok;
  try {
    ok = Boolean(expect(outcome));
  } catch {
    ok = false;
  }
  steps.push({
    step: name,
    ok,
    outcome: JSON.parse(normalize(JSON.stringify(outcome, replacer) ?? "null")),
    exchanges,
  });
}

function replacer(_key, value) {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (value === undefined) return "undefined";
  return value;
}

const value = (expected) => (o) => JSON.stringify(o.value, replacer) === JSON.stringify(expected, replacer);
const status = (code) => (o) => o.error?.status === code;

/// The awakeable id `Waiter/wait` published in the mailbox `key`, once it is there.
async function awakeableIn(key) {
  for (let i = 0; i < 200; i++) {
    const id = await unrecorded.objectClient(Mailbox, key).get(null);
    if (id) return id;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no awakeable id in mailbox ${key}`);
}

// Calls: a service, an object (exclusive and shared handlers), no output, bytes.
await step("service call", () => ingress.serviceClient(Greeter).greet("Ada"), value("Hello, Ada!"));
await step("object call", async () => {
  await ingress.objectClient(Counter, `c-${run}`).add(3);
  return ingress.objectClient(Counter, `c-${run}`).add(4);
}, value(7));
await step("object shared call", () => ingress.objectClient(Counter, `c-${run}`).get(null), value(7));
await step("no output", () => ingress.serviceClient(Greeter).nothing(null), (o) => "value" in o && o.value === undefined);
await step("call without an argument", () => ingress.serviceClient(Greeter).nothing(), (o) => "value" in o && o.value === undefined);
await step("binary input and output", () =>
  ingress.serviceClient(Greeter).reverse(
    new Uint8Array([0, 159, 146, 150, 123]),
    clients.rpc.opts({ input: clients.serde.binary, output: clients.serde.binary }),
  ), value(new Uint8Array([123, 150, 146, 159, 0])));

// Sends: plain, with an idempotency key then attach, delayed then attach.
await step("send", () => ingress.serviceSendClient(Greeter).greet("Bo"),
  (o) => o.value.status === "Accepted" && o.value.attachable === false);
await step("send with idempotency key then attach", async () => {
  const send = await ingress.serviceSendClient(Greeter).greet("Cy", clients.rpc.sendOpts({ idempotencyKey: `s-${run}` }));
  return { send, result: await ingress.result(send) };
}, (o) => o.value.send.status === "Accepted" && o.value.result === "Hello, Cy!");
await step("delayed send then attach", async () => {
  const started = Date.now();
  const send = await ingress.serviceSendClient(Greeter).greet("Di", clients.rpc.sendOpts({ delay: 600, idempotencyKey: `d-${run}` }));
  const result = await ingress.result(send);
  return { send, result, waited: Date.now() - started >= 500 };
}, (o) => o.value.result === "Hello, Di!" && o.value.waited);

// Idempotency: a repeated call answers the first result and runs once; a repeated send says so.
await step("idempotent call repeated", async () => {
  const opts = clients.rpc.opts({ idempotencyKey: `i-${run}` });
  const first = await ingress.objectClient(Counter, `i-${run}`).add(5, opts);
  const second = await ingress.objectClient(Counter, `i-${run}`).add(5, opts);
  const total = await ingress.objectClient(Counter, `i-${run}`).get(null);
  return { first, second, total };
}, value({ first: 5, second: 5, total: 5 }));
await step("idempotent send repeated", async () => {
  const opts = clients.rpc.sendOpts({ idempotencyKey: `r-${run}` });
  const first = await ingress.serviceSendClient(Greeter).greet("Ed", opts);
  const second = await ingress.serviceSendClient(Greeter).greet("Ed", opts);
  return { first: first.status, second: second.status, same: first.invocationId === second.invocationId };
}, value({ first: "Accepted", second: "PreviouslyAccepted", same: true }));
await step("idempotency key reused with another input", async () => {
  const opts = clients.rpc.opts({ idempotencyKey: `x-${run}` });
  await ingress.serviceClient(Greeter).greet("Fay", opts);
  return ingress.serviceClient(Greeter).greet("Gil", opts);
}, status(409));

// Workflows: submit, output before and after, attach, a second submit, a second run.
await step("workflow submit", () => ingress.workflowClient(Signup, `w-${run}`).workflowSubmit("ada@example.com"),
  (o) => o.value.status === "Accepted");
await step("workflow output before it ends", async () => {
  const output = await ingress.workflowClient(Signup, `w-${run}`).workflowOutput();
  return { ready: output.ready };
}, value({ ready: false }));
await step("workflow shared handler", () => ingress.workflowClient(Signup, `w-${run}`).confirm("yes"),
  (o) => "value" in o && o.value === undefined);
await step("workflow attach", () => ingress.workflowClient(Signup, `w-${run}`).workflowAttach(),
  value("ada@example.com: yes"));
await step("workflow output after it ends", async () => {
  const output = await ingress.workflowClient(Signup, `w-${run}`).workflowOutput();
  return { ready: output.ready, result: output.result };
}, value({ ready: true, result: "ada@example.com: yes" }));
await step("workflow submitted again", () => ingress.workflowClient(Signup, `w-${run}`).workflowSubmit("bo@example.com"),
  (o) => o.value.status === "PreviouslyAccepted");
await step("workflow run called again", () => ingress.workflowClient(Signup, `w-${run}`).run("bo@example.com"), status(409));
await step("workflow attach of an unknown key", () => ingress.workflowClient(Signup, `nobody-${run}`).workflowAttach(), status(404));

// Awakeables: resolved and rejected from outside.
await step("awakeable resolved", async () => {
  const send = await ingress.serviceSendClient(Waiter).wait(`a-${run}`, clients.rpc.sendOpts({ idempotencyKey: `a-${run}` }));
  await ingress.resolveAwakeable(await awakeableIn(`a-${run}`), "paid");
  return ingress.result(send);
}, value("paid"));
await step("awakeable rejected", async () => {
  const send = await ingress.serviceSendClient(Waiter).wait(`b-${run}`, clients.rpc.sendOpts({ idempotencyKey: `b-${run}` }));
  await ingress.rejectAwakeable(await awakeableIn(`b-${run}`), "no funds");
  return ingress.result(send);
}, status(500));

// Errors: a handler's terminal error keeps its code and is not retried, even when it is a 5xx
// and the client retries; unknown targets; a body that is not JSON.
await step("terminal error with a code", () => ingress.serviceClient(Greeter).fail(422), status(422));
await step("terminal 500 is not retried", () =>
  ingress.serviceClient(Greeter).fail(500, clients.rpc.opts({ idempotencyKey: `f-${run}` })),
  (o) => o.error?.status === 500 && exchanges.length === 1);
await step("unknown service", () => ingress.serviceClient({ name: "Nobody" }).greet("Ada"), status(404));
await step("unknown handler", () => ingress.serviceClient(Greeter).shout("Ada"), status(404));
const malformedJson = {
  contentType: "application/json",
  serialize: () => new TextEncoder().encode("{not json"),
  deserialize: (bytes) => new TextDecoder().decode(bytes),
};
await step("malformed JSON", () =>
  ingressNoRetry.serviceClient(Greeter).greet("unused", clients.rpc.opts({ input: malformedJson })),
  status(400));
await step("input that is not JSON", () =>
  ingressNoRetry.serviceClient(Greeter).greet(new TextEncoder().encode("{not json"),
    clients.rpc.opts({ input: clients.serde.binary })), status(400));

console.log(JSON.stringify({ steps }, null, 1));
