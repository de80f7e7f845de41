{
// Cargo.toml: zeroapp-engine with features = ["http"], and tokio-util for the stop signal.
use zeroapp_engine::http::{self, HttpLimits};

let limits = HttpLimits::default();
let listener = tokio::net::TcpListener::bind("127.0.0.1:9080").await?;
let stop = tokio_util::sync::CancellationToken::new();
let serving = tokio::spawn(http::serve(listener, http::ingress(&engine, &limits), limits, stop.clone()));
// … then, to stop: requests in flight finish, new connections are refused.
stop.cancel();
serving.await??;
}
