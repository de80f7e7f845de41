{
let receipt: String = ctx
    .run_with("charge card", RetryPolicy::exponential(Duration::from_millis(50)).max_attempts(5), || async {
        Err(HandlerError::retryable("gateway busy"))
    })
    .await?; // after 5 attempts: a terminal error, journaled
}
