//! Examples of `zeroapp-engine` used as a library: see `examples/` and run one with
//! `cargo run --example NAME` from the repository root.
