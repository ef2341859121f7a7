use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("paranoid-harness: under construction");
    ExitCode::from(paranoid_harness::error::exit::FAILED)
}
