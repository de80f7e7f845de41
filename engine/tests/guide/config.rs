{
Engine::builder()
    .inactivity_timeout(Duration::from_secs(60)) // waiting invocations give their memory back
    .retry_policy(RetryPolicy::exponential(Duration::from_millis(100)).max_delay(Duration::from_secs(10)))
    .retention(Duration::from_secs(24 * 3600))   // finished invocations kept for attach/idempotency
    .clock(ManualClock::new(0))                  // tests: time moves only when you advance it
}
