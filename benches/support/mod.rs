//! What the benchmarks share, by job: settings from the environment (settings.rs), starting
//! the server of a deployment (deployment.rs), the load client (load.rs), and CPU and memory
//! read from /proc (proc.rs). Deployments themselves come from the integration tests' harness
//! (tests/it/support, included as `harness` by each benchmark).
//!
//! Everything here talks only to 127.0.0.1 and to /proc of this machine.
// Each benchmark is a crate of its own and uses a part of this module; what one leaves unused
// another uses.
#![allow(dead_code)]

pub mod deployment;
pub mod load;
pub mod proc;
pub mod settings;
