//! One entry point per subcommand (`knobs`, `eval`, `plan`, `matrix`, `check`, `bench`): find
//! the flake, load the catalogue, call the runner, hand its finished result to a reporter
//! ([`crate::report`]), write the output, and return the exit code (docs/harness.md). The
//! `sandbox` and `vm` tiers have theirs in [`crate::sandbox_cmd`] and [`crate::vm_cmd`].

use std::path::PathBuf;
use std::time::Duration;

use crate::catalogue::Catalogue;
use crate::cli_support::{emit, find_flake, print_json, Format, PoolOptions, CATALOGUE_TIMEOUT};
use crate::error::{exit, Error, Result};
use crate::nix::{self, Backend};
use crate::plan::{PlanSpec, PlanSummary};
use crate::{bench, check, eval_cmd, matrix, report};

/// `knobs`: the catalogue read from the flake.
pub fn knobs(flake: Option<PathBuf>, format: Format) -> Result<u8> {
    let flake = find_flake(flake)?;
    let cat = Catalogue::load(&flake, CATALOGUE_TIMEOUT)?;
    match format {
        Format::Json => print_json(&report::knobs_json(&cat)),
        Format::Human => emit(&report::knobs_human(&cat)),
    }
    Ok(exit::OK)
}

/// What `eval` was asked for.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    pub host: Option<String>,
    pub module: Option<PathBuf>,
    pub flake: Option<PathBuf>,
    pub format: Format,
    /// Seconds.
    pub timeout: u64,
}

/// A `--module` argument: a NixOS module file, or a directory with a default.nix. A flake is
/// refused (exit 2) with the way to check it: its outputs are no module, and evaluating it as
/// one reports `inputs` and `outputs` as options.
fn module_file(m: PathBuf) -> Result<PathBuf> {
    let is_flake = m.file_name().is_some_and(|n| n == "flake.nix")
        || (m.is_dir() && m.join("flake.nix").is_file() && !m.join("default.nix").is_file());
    if is_flake {
        return Err(Error::Usage(format!(
            "--module {}: this is a flake, not a NixOS module. Pass the module files its nixosConfigurations list (one module that imports them: {{ imports = [ ./configuration.nix ./paranoid.nix ]; }}), or, with full nixpkgs, check --flake DIR#HOST",
            m.display()
        )));
    }
    Ok(m)
}

/// `eval`: one host's or module's projection; 6 when its NixOS assertions fail.
pub fn eval(req: EvalRequest) -> Result<u8> {
    let flake = find_flake(req.flake)?;
    let target = match (req.host, req.module) {
        (Some(h), None) => eval_cmd::EvalTarget::Host(h),
        (None, Some(m)) => eval_cmd::EvalTarget::Module(module_file(m)?),
        _ => {
            return Err(Error::Usage(
                "give exactly one of --host or --module".into(),
            ))
        }
    };
    let p = eval_cmd::evaluate(&flake, &target, Duration::from_secs(req.timeout))?;
    match req.format {
        Format::Json => print_json(&p),
        Format::Human => {
            // The catalogue names the switches; without it the summary still prints.
            let cat = Catalogue::load(&flake, CATALOGUE_TIMEOUT).ok();
            emit(&report::eval_human(&p, cat.as_ref()))
        }
    }
    let code = eval_cmd::exit_code(&p);
    if code == exit::ASSERTIONS {
        eprintln!("paranoid-harness: NixOS assertions failed (listed above); a real system would refuse to build");
    }
    Ok(code)
}

/// `plan`: the rows of a plan, evaluated nowhere; 1 when pairwise leaves a pair uncovered.
pub fn plan(spec: &PlanSpec, flake: Option<PathBuf>, format: Format) -> Result<u8> {
    let flake = find_flake(flake)?;
    let cat = Catalogue::load(&flake, CATALOGUE_TIMEOUT)?;
    let summary = PlanSummary::build(&cat, spec)?;
    match format {
        Format::Json => print_json(&report::plan_json(&summary)),
        Format::Human => emit(&report::plan_human(&summary)),
    }
    Ok(summary.exit_code())
}

/// What `matrix` was asked for.
#[derive(Debug, Clone)]
pub struct MatrixRequest {
    pub plan: PlanSpec,
    pub backend: Backend,
    pub pool: PoolOptions,
    pub flake: Option<PathBuf>,
    pub format: Format,
    /// Also write a JUnit report here.
    pub junit: Option<PathBuf>,
}

/// `matrix`: every row of the plan evaluated and checked; 1 on any unexpected failure.
pub fn matrix(req: MatrixRequest) -> Result<u8> {
    let eval = req.pool.eval_options(req.backend)?;
    let flake = find_flake(req.flake)?;
    let cat = Catalogue::load(&flake, CATALOGUE_TIMEOUT)?;
    let (strategy, pins, _) = req.plan.rows(&cat)?;
    if req.backend == Backend::Nixos {
        nix::probe_nixpkgs(&flake)?;
    }
    let bar = report::Progress::on_terminal();
    let result = matrix::run(
        &flake,
        &cat,
        &matrix::MatrixOptions {
            strategy,
            pins,
            eval,
        },
        &|e| bar.event(e),
    )?;
    bar.finish();
    if let Some(path) = req.junit {
        std::fs::write(&path, report::matrix_junit(&result))
            .map_err(|e| Error::Other(format!("--junit {}: {e}", path.display())))?;
    }
    match req.format {
        // Compact: an exhaustive run has tens of thousands of rows.
        Format::Json => emit(&format!("{}\n", report::matrix_json(&result))),
        Format::Human => emit(&report::matrix_human(&result)),
    }
    Ok(result.exit_code())
}

/// What `check` was asked for.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub module: Option<PathBuf>,
    /// `REF#host`.
    pub flake: Option<String>,
    /// The paranoid flake.
    pub paranoid: Option<PathBuf>,
    pub profile: String,
    pub format: Format,
    /// Seconds.
    pub timeout: u64,
}

/// `check`: someone's host against the invariants; 0 only when clean.
pub fn check(req: CheckRequest) -> Result<u8> {
    let paranoid = find_flake(req.paranoid)?;
    let target = match (req.module, req.flake) {
        (Some(m), None) => check::Target::Module(module_file(m)?),
        (None, Some(f)) => check::Target::parse_flake_host(&f)?,
        _ => {
            return Err(Error::Usage(
                "give exactly one of --module FILE or --flake REF#host".into(),
            ))
        }
    };
    let cat = Catalogue::load(&paranoid, CATALOGUE_TIMEOUT)?;
    let result = check::run(
        &paranoid,
        &cat,
        &target,
        &req.profile,
        Duration::from_secs(req.timeout),
    )?;
    match req.format {
        Format::Json => print_json(&report::check_json(&result)),
        Format::Human => emit(&report::check_human(&result)),
    }
    Ok(result.exit_code())
}

/// What `bench` was asked for.
#[derive(Debug, Clone)]
pub struct BenchRequest {
    pub plan: PlanSpec,
    pub pool: PoolOptions,
    pub flake: Option<PathBuf>,
    /// Only the first N rows of the plan.
    pub limit: Option<usize>,
    pub repeat: usize,
    pub format: Format,
}

/// `bench`: one nix process per permutation vs batched, side by side.
pub fn bench(req: BenchRequest) -> Result<u8> {
    let eval = req.pool.eval_options(Backend::Surface)?;
    let flake = find_flake(req.flake)?;
    let cat = Catalogue::load(&flake, CATALOGUE_TIMEOUT)?;
    let (_, _, mut rows) = req.plan.rows(&cat)?;
    if let Some(n) = req.limit {
        rows.truncate(n.max(1));
    }
    let r = bench::run(&flake, &rows, matrix::FIXTURE, &eval, req.repeat)?;
    match req.format {
        Format::Json => print_json(&serde_json::to_value(&r).unwrap_or_default()),
        Format::Human => emit(&report::bench_human(&r)),
    }
    Ok(exit::OK)
}
