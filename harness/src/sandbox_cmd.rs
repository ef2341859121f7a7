//! `paranoid-harness sandbox`: placeholder until the sandbox tier lands (owned by the sandbox engineer).

use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {}

pub fn run(_args: SandboxArgs) -> Result<u8> {
    Err(Error::Other("not built yet".into()))
}
