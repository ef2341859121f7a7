//! paranoid-harness: evaluates paranoid's knobs with real Nix, asserts the posture, and runs
//! the sandbox and VM tiers. The library holds the logic; `main.rs` only parses arguments and
//! maps errors to exit codes.
//!
//! What runs (`nix`, `matrix`, `check`, `bench`) is kept apart from what reports (`report`);
//! `commands` joins them, one entry point per subcommand.

pub mod bench;
pub mod catalogue;
pub mod check;
pub mod cli_support;
pub mod commands;
pub mod error;
pub mod effective;
pub mod eval_cmd;
pub mod interrupt;
pub mod invariants;
pub mod matrix;
pub mod mounts;
pub mod nix;
pub mod plan;
pub mod report;
pub mod sandbox_cmd;
pub mod specialisations;
pub mod sshd;
pub mod stand_ins;
pub mod unjudged;
pub mod store;
pub mod vm_cmd;
