//! `paranoid-harness vm`: placeholder until the VM tier lands (owned by the VM engineer).

use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct VmArgs {}

pub fn run(_args: VmArgs) -> Result<u8> {
    Err(Error::Other("not built yet".into()))
}
