//! What the subcommands share: the output format, finding the paranoid flake, turning the pool
//! options of the command line into [`EvalOptions`], and writing to stdout. No subcommand's
//! logic lives here (see [`crate::commands`]).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::nix::{Backend, EvalOptions, Flake};

/// How long reading `lib.catalogue` may take.
pub const CATALOGUE_TIMEOUT: Duration = Duration::from_secs(120);

/// `--format` of the commands that evaluate: a human summary or the documented JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// The paranoid flake: `arg` (`--flake DIR`), else `$PARANOID_FLAKE`, else the nearest directory
/// above the current one with both `flake.nix` and `lib/harness.nix`.
pub fn find_flake(arg: Option<PathBuf>) -> Result<Flake> {
    if let Some(dir) = arg.or_else(|| std::env::var_os("PARANOID_FLAKE").map(PathBuf::from)) {
        return Flake::open(&dir);
    }
    let cwd =
        std::env::current_dir().map_err(|e| Error::Other(format!("current directory: {e}")))?;
    for dir in cwd.ancestors() {
        if dir.join("flake.nix").is_file() && dir.join("lib/harness.nix").is_file() {
            return Flake::open(dir);
        }
    }
    Err(Error::Usage("no paranoid flake found above the current directory: pass --flake DIR (or set PARANOID_FLAKE)".into()))
}

/// A byte count as `--max-memory` takes it: digits with an optional K, M or G suffix.
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("unknown size suffix in {s}: use K, M or G")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|e| format!("{s}: {e}"))
}

/// The pool options of `matrix` and `bench` as given (`--jobs`, `--batch-size`, `--max-memory`,
/// `--timeout` in seconds).
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub jobs: usize,
    pub batch_size: usize,
    pub max_memory: Option<u64>,
    pub timeout: u64,
}

impl PoolOptions {
    /// Checks the options against each other and builds the runner's [`EvalOptions`].
    pub fn eval_options(&self, backend: Backend) -> Result<EvalOptions> {
        if self.jobs == 0 {
            return Err(Error::Usage(
                "--jobs 0: at least one nix process must run (use --jobs 1 or more)".into(),
            ));
        }
        if self.timeout == 0 {
            return Err(Error::Usage(
                "--timeout 0: give nix at least a second".into(),
            ));
        }
        if let Some(m) = self.max_memory {
            let share = m / self.jobs as u64;
            if share < 64 << 20 {
                return Err(Error::Usage(format!(
                    "--max-memory {m} leaves {} MiB per nix process with --jobs {}; one process needs at least 64 MiB (lower --jobs or raise --max-memory)",
                    share >> 20,
                    self.jobs
                )));
            }
        }
        Ok(EvalOptions {
            jobs: self.jobs,
            batch_size: self.batch_size,
            timeout: Duration::from_secs(self.timeout),
            max_memory: self.max_memory,
            backend,
        })
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
pub fn emit(s: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
}

/// Pretty JSON and a newline on stdout.
pub fn print_json(v: &Value) {
    emit(&format!(
        "{}\n",
        serde_json::to_string_pretty(v).unwrap_or_default()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_take_k_m_g_suffixes() {
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("4k"), Ok(4096));
        assert_eq!(parse_bytes(" 150M "), Ok(150 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert!(parse_bytes("3T")
            .unwrap_err()
            .contains("unknown size suffix"));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("").is_err());
    }

    #[test]
    fn pool_options_refuse_what_cannot_run() {
        let ok = PoolOptions {
            jobs: 2,
            batch_size: 0,
            max_memory: Some(1 << 30),
            timeout: 300,
        };
        let e = ok.eval_options(Backend::Surface).unwrap();
        assert_eq!((e.jobs, e.max_memory), (2, Some(1 << 30)));
        assert_eq!(e.timeout, Duration::from_secs(300));
        for (bad, says) in [
            (
                PoolOptions {
                    jobs: 0,
                    ..ok.clone()
                },
                "--jobs 0",
            ),
            (
                PoolOptions {
                    timeout: 0,
                    ..ok.clone()
                },
                "--timeout 0",
            ),
            (
                PoolOptions {
                    max_memory: Some(100 << 20),
                    ..ok.clone()
                },
                "50 MiB per nix process",
            ),
        ] {
            let err = bad.eval_options(Backend::Surface).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::exit::USAGE);
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
