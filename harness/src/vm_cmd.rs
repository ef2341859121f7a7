//! `paranoid-harness vm`: runs the flake's NixOS VM tests (`checks.<system>.vm-*`) through
//! the paranoid-vm crate and reports. See docs/vm.md.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use paranoid_vm::{report, Config, Event, RunReport, Status, VmError};

use crate::error::{exit, Error};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// Run the flake's NixOS VM tests in parallel (needs full nixpkgs and KVM).
#[derive(Args, Clone, Debug)]
pub struct VmArgs {
    /// The paranoid checkout whose `checks.<system>.vm-*` to run [default: $PARANOID_FLAKE, else
    /// the nearest checkout above the current directory].
    #[arg(long, value_name = "DIR")]
    pub paranoid: Option<PathBuf>,
    /// Deprecated spelling of --paranoid (also takes a flake reference).
    #[arg(long, value_name = "REF", hide = true, conflicts_with = "paranoid")]
    pub flake: Option<String>,
    /// Run only checks whose name contains PATTERN (or matches it as a glob with * and ?).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// Builds at once [default: half the CPUs, at least 1].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Write one merged JUnit report (the driver's subtests included) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Extra attempts for checks marked flaky (`passthru.paranoid.flaky = true`); others run once.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// Wall-time limit of one attempt, in seconds (dependencies' builds included).
    #[arg(long, value_name = "S", default_value_t = 3600)]
    pub timeout: u64,
    /// Output on stdout: a human summary or a JSON document (progress always goes to stderr).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Where to keep the logs [default: a new directory under the system temp dir].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// The Nix system whose checks to run [default: builtins.currentSystem].
    #[arg(long, value_name = "SYSTEM")]
    pub system: Option<String>,
    /// Discover and vet the checks, print the plan, and build nothing.
    #[arg(long)]
    pub list: bool,
}

/// Memory one VM build is budgeted for when bounding --jobs.
const VM_JOB_MEMORY: u64 = 2 << 30;

/// Environment variable naming the KVM device to check (default /dev/kvm).
pub const KVM_DEVICE_ENV: &str = "PARANOID_VM_KVM_DEVICE";

fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() / 2)
        .unwrap_or(1)
        .max(1)
}

fn to_error(e: VmError) -> Error {
    match e {
        VmError::Usage(m) => Error::Usage(m),
        VmError::MissingTool { tool, hint } => Error::MissingTool { tool, hint },
        VmError::Environment(m) => Error::Environment(m),
        VmError::NixEval { context, message } => Error::NixEval { context, message },
        VmError::Other(m) => Error::Other(m),
    }
}

/// The exit code a finished run means (docs/harness.md): interrupted 130, any failure or
/// timeout 1, otherwise any check this machine cannot run 7, else 0.
pub fn exit_code(report: &RunReport) -> u8 {
    if report.interrupted {
        exit::INTERRUPTED
    } else if report.count(Status::Failed) + report.count(Status::TimedOut) > 0 {
        exit::FAILED
    } else if report.count(Status::Refused) > 0 {
        exit::ENVIRONMENT
    } else {
        exit::OK
    }
}

pub fn run(args: VmArgs) -> Result<u8, Error> {
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    if jobs == 0 {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }
    // A NixOS VM test is a qemu with ~1 GiB of guest memory and a core of its own.
    let (jobs, note) = crate::nix::PoolBound::of_machine(1, VM_JOB_MEMORY).apply(jobs, "VM builds");
    if let Some(note) = note {
        eprintln!("paranoid-harness: {note}");
    }
    if args.timeout == 0 {
        return Err(Error::Usage("--timeout must be at least 1 second".into()));
    }
    if let Some(junit) = &args.junit {
        let parent = junit
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !parent.is_dir() {
            return Err(Error::Usage(format!(
                "--junit {}: the directory {} does not exist",
                junit.display(),
                parent.display()
            )));
        }
    }

    let flake = match args.flake.clone() {
        // The old spelling also took flake references (`github:...`), passed on as they are.
        Some(reference) if !std::path::Path::new(&reference).is_dir() => {
            eprintln!("paranoid-harness: --flake is deprecated: use --paranoid DIR (or PARANOID_FLAKE=DIR)");
            reference
        }
        old => crate::cli_support::find_flake(crate::cli_support::paranoid_dir(
            args.paranoid.clone(),
            old.map(PathBuf::from),
        ))?
        .root
        .display()
        .to_string(),
    };
    let mut config = Config::new(flake);
    config.system = args.system.clone();
    config.filter = args.filter.clone();
    config.jobs = jobs;
    config.retries = args.retries;
    config.timeout = Duration::from_secs(args.timeout);
    config.log_dir = args.log_dir.clone();
    if let Some(dev) = std::env::var_os(KVM_DEVICE_ENV) {
        config.kvm_device = PathBuf::from(dev);
    }

    if args.list {
        let plan = paranoid_vm::plan_tier(&config).map_err(to_error)?;
        match args.format {
            Format::Human => print!("{}", report::plan_human(&plan)),
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&report::plan_json(&plan)).expect("JSON serializes")
            ),
        }
        let refused = plan.checks.iter().filter(|c| c.refusal.is_some()).count();
        return Ok(if refused > 0 {
            exit::ENVIRONMENT
        } else {
            exit::OK
        });
    }

    let on_event = |e: &Event| eprintln!("{}", report::progress_line(e));
    let result = paranoid_vm::run_tier(&config, &on_event).map_err(to_error)?;

    if let Some(junit) = &args.junit {
        paranoid_vm::junit::write(&result, junit).map_err(to_error)?;
    }
    let code = exit_code(&result);
    match args.format {
        Format::Human => print!("{}", report::human(&result, args.junit.as_deref())),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report::json(&result, args.junit.as_deref(), code))
                .expect("JSON serializes")
        ),
    }
    if code == exit::ENVIRONMENT {
        eprintln!(
            "paranoid-harness vm: {} check(s) cannot run on this machine (see [refused] above); \
             the VM tier needs full nixpkgs, KVM and a Nix with the kvm and nixos-test features.",
            result.count(Status::Refused)
        );
    }
    Ok(code)
}
