{
// In the new build's pipeline, on a copy of the production folder (`zeroapp backup`):
let recorded = Engine::read_recorded("./data-copy", Duration::from_secs(24 * 3600)).await?;
let report = Engine::builder()
    .register(Workflow::new("Orders").run(fulfil))
    .check_replay(&recorded)
    .await?;
for finding in &report.incompatible {
    // inv_… Orders/o-7/run (suspended) at journal entry 0: expected run("charge"), found …
    eprintln!("{finding}");
}
assert!(report.is_compatible(), "this build would break invocations in flight");
}
