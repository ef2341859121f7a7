//! Thin: parse the command line, run, map errors to exit codes (docs/execwatch.md).

fn main() {
    let code = paranoid_execwatch::cli::main();
    std::process::exit(code);
}
