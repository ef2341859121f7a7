//! paranoid-harness: evaluates paranoid's knobs with real Nix, asserts the posture, and runs
//! the sandbox and VM tiers. The library holds the logic; `main.rs` only parses arguments and
//! maps errors to exit codes.

pub mod error;
pub mod sandbox_cmd;
pub mod vm_cmd;
