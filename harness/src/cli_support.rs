//! What the subcommands share: the output format, finding the paranoid flake, turning the pool
//! options of the command line into [`EvalOptions`], and writing to stdout. No subcommand's
//! logic lives here (see [`crate::commands`]).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::nix::{Backend, EvalOptions, Flake, PoolBound, NIX_PER_CORE, NIX_PROCESS_MEMORY};

/// How long reading `lib.catalogue` may take.
pub const CATALOGUE_TIMEOUT: Duration = Duration::from_secs(120);

/// `--format` of the commands that evaluate: a human summary or the documented JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// The environment variable naming the paranoid checkout when `--paranoid` is not given.
pub const PARANOID_ENV: &str = "PARANOID_FLAKE";

/// The paranoid checkout, the same way for every command: `arg` (`--paranoid DIR`), else
/// `$PARANOID_FLAKE`, else the nearest directory above the current one with both `flake.nix`
/// and `lib/harness.nix`.
pub fn find_flake(arg: Option<PathBuf>) -> Result<Flake> {
    if let Some(dir) = arg.or_else(|| {
        std::env::var_os(PARANOID_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }) {
        return Flake::open(&dir);
    }
    let cwd =
        std::env::current_dir().map_err(|e| Error::Other(format!("current directory: {e}")))?;
    for dir in cwd.ancestors() {
        if dir.join("flake.nix").is_file() && dir.join("lib/harness.nix").is_file() {
            return Flake::open(dir);
        }
    }
    Err(Error::Usage(format!(
        "no paranoid checkout found above {}: pass --paranoid DIR (or set {PARANOID_ENV}=DIR) with the directory that holds paranoid's flake.nix",
        cwd.display()
    )))
}

/// `--paranoid DIR`, or the old spelling `--flake DIR` of the commands where `--flake` named the
/// checkout (with a deprecation note: `check --flake` names the host's flake).
pub fn paranoid_dir(paranoid: Option<PathBuf>, old_flake: Option<PathBuf>) -> Option<PathBuf> {
    match old_flake {
        Some(dir) => {
            eprintln!("paranoid-harness: --flake DIR is deprecated for the paranoid checkout: use --paranoid DIR (or {PARANOID_ENV}=DIR); `check --flake` names the host's flake");
            Some(dir)
        }
        None => paranoid,
    }
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
    /// Checks the options against each other and builds the runner's [`EvalOptions`], with
    /// `--jobs` lowered to what the machine takes (said on stderr).
    pub fn eval_options(&self, backend: Backend) -> Result<EvalOptions> {
        let bound = PoolBound::of_machine(NIX_PER_CORE, NIX_PROCESS_MEMORY);
        let opts = self.eval_options_within(backend, &bound)?;
        if let (_, Some(note)) = bound.apply(self.jobs, "nix processes") {
            eprintln!("paranoid-harness: {note}");
        }
        Ok(opts)
    }

    /// [`Self::eval_options`] for a given bound (no output).
    pub fn eval_options_within(&self, backend: Backend, bound: &PoolBound) -> Result<EvalOptions> {
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
        let (jobs, _) = bound.apply(self.jobs, "nix processes");
        if let Some(m) = self.max_memory {
            let share = m / jobs as u64;
            if share < 64 << 20 {
                return Err(Error::Usage(format!(
                    "--max-memory {m} leaves {} MiB per nix process with --jobs {jobs}; one process needs at least 64 MiB (lower --jobs or raise --max-memory)",
                    share >> 20,
                )));
            }
        }
        Ok(EvalOptions {
            jobs,
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
        let roomy = PoolBound::new(8, Some(64 << 30), NIX_PER_CORE, NIX_PROCESS_MEMORY);
        let e = ok.eval_options_within(Backend::Surface, &roomy).unwrap();
        assert_eq!((e.jobs, e.max_memory), (2, Some(1 << 30)));
        let capped = PoolOptions {
            jobs: 100_000,
            max_memory: None,
            ..ok.clone()
        }
        .eval_options_within(Backend::Surface, &roomy)
        .unwrap();
        assert_eq!(capped.jobs, 16, "8 cores, 2 nix processes each");
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
            let err = bad
                .eval_options_within(Backend::Surface, &roomy)
                .unwrap_err();
            assert_eq!(err.exit_code(), crate::error::exit::USAGE);
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
