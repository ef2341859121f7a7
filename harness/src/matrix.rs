//! The matrix: evaluate a plan's rows against the `matrix` fixture, check every invariant on
//! every row, and collect a [`MatrixResult`] for the reporters. Runs in two phases: first the
//! reference rows (the fixture without paranoid, all-off, each switch alone), which teach
//! `knob-off.untouched` which options each area touches; then every other row, streamed (a
//! projection is checked and dropped as soon as it arrives, so exhaustive plans fit in memory).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::catalogue::Catalogue;
use crate::error::{Error, Result};
use crate::invariants::{self, Posture, Proj, Violation, IDS};
use crate::nix::{self, EvalOptions, Flake, Item, Outcome};
use crate::plan::{self, Row, RowKind, Strategy};

pub const FIXTURE: &str = "matrix";
const BASELINE_ID: &str = "baseline:without-paranoid";

#[derive(Debug, Clone)]
pub struct MatrixOptions {
    pub strategy: Strategy,
    pub pins: BTreeMap<String, Value>,
    pub eval: EvalOptions,
}

/// What became of one row.
#[derive(Debug, Clone, Serialize)]
pub struct RowResult {
    pub id: String,
    #[serde(flatten)]
    pub kind: RowKind,
    /// The knobs the row defines.
    pub knobs: BTreeMap<String, Value>,
    /// Areas on, from the effective knobs (empty when evaluation failed).
    pub areas_on: Vec<String>,
    /// Constraints that must refuse this row.
    pub expected_constraints: Vec<String>,
    /// Invariants that applied to this row.
    pub checked: Vec<String>,
    pub violations: Vec<Violation>,
    /// Nix's message when the row did not evaluate.
    pub error: Option<String>,
}

impl RowResult {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.violations.is_empty()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InvariantTally {
    pub checked: usize,
    pub failed: usize,
}

/// How often each invariant was checked and violated over the rows; every known id appears,
/// so an invariant that never applied shows as checked 0.
pub fn tally(results: &[RowResult]) -> BTreeMap<String, InvariantTally> {
    let mut tallies: BTreeMap<String, InvariantTally> = IDS
        .iter()
        .map(|id| (id.to_string(), InvariantTally::default()))
        .collect();
    for r in results {
        for id in &r.checked {
            let t = tallies.entry(id.clone()).or_default();
            t.checked += 1;
            if r.violations.iter().any(|v| &v.invariant == id) {
                t.failed += 1;
            }
        }
    }
    tallies
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixResult {
    pub schema: u32,
    pub strategy: String,
    pub backend: String,
    pub jobs: usize,
    pub batch_size: usize,
    pub planned: usize,
    pub evaluated: usize,
    pub interrupted: bool,
    pub wall_seconds: f64,
    /// What the runner had to do: processes, kills, re-runs.
    pub nix: nix::Stats,
    /// Options each area's switches change on their own (learned from the alone rows).
    pub touched: BTreeMap<String, BTreeSet<String>>,
    pub invariants: BTreeMap<String, InvariantTally>,
    pub rows: Vec<RowResult>,
}

impl MatrixResult {
    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|r| !r.passed()).count()
    }
    pub fn ok(&self) -> bool {
        !self.interrupted && self.failures() == 0 && self.evaluated == self.planned
    }
    /// 130 when interrupted, 0 when every planned row passed, else 1.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            crate::error::exit::INTERRUPTED
        } else if self.ok() {
            crate::error::exit::OK
        } else {
            crate::error::exit::FAILED
        }
    }
}

fn item_of(row: &Row) -> Item {
    Item {
        id: row.id.clone(),
        fixture: Some(FIXTURE.into()),
        knobs: row.knobs.clone(),
        constraint: row.constraint.clone(),
        without_impermanence: row.without_impermanence,
        ..Default::default()
    }
}

/// The state rows are checked against.
struct Reference {
    baseline: Value,
    touched: BTreeMap<String, BTreeSet<String>>,
}

fn check_row(
    cat: &Catalogue,
    row: &Row,
    outcome: &Outcome,
    reference: Option<&Reference>,
) -> RowResult {
    let mut r = RowResult {
        id: row.id.clone(),
        kind: row.kind.clone(),
        knobs: row.knobs.clone(),
        areas_on: vec![],
        expected_constraints: vec![],
        checked: vec![],
        violations: vec![],
        error: None,
    };
    let projection = match outcome {
        Outcome::Failed { message } => {
            r.error = Some(message.clone());
            r.expected_constraints =
                invariants::expected_constraints(cat, &row.knobs, row.constraint.as_deref())
                    .iter()
                    .map(|c| c.id.clone())
                    .collect();
            return r;
        }
        Outcome::Projection(p) => p,
    };
    let knobs = Proj(projection).knobs();
    let posture = Posture::effective(cat, &knobs);
    let expected = invariants::expected_constraints(cat, &knobs, row.constraint.as_deref());
    let constraint_row = row.constraint.is_some();
    r.areas_on = posture.on.iter().cloned().collect();
    r.expected_constraints = expected.iter().map(|c| c.id.clone()).collect();
    r.checked = IDS
        .iter()
        .filter(|id| invariants::applies(id, &posture, constraint_row, !expected.is_empty()))
        .filter(|id| **id != "knob-off.untouched" || reference.is_some())
        .map(|s| s.to_string())
        .collect();
    if !constraint_row {
        // A row a guard must refuse breaks that guard's invariant by definition; the
        // constraint checks below say whether the guard did refuse it.
        let refused: Vec<String> = expected.iter().map(|c| c.marker()).collect();
        r.violations.extend(
            invariants::check_posture(&posture, projection)
                .into_iter()
                .filter(|v| !invariants::guarded_by(&v.invariant).is_some_and(|g| refused.contains(&format!("[paranoid:{g}]")))),
        );
        if let Some(refs) = reference {
            r.violations.extend(invariants::knob_off_untouched(
                &posture,
                projection,
                &refs.baseline,
                &refs.touched,
            ));
        }
    }
    r.violations.extend(invariants::check_assertions(
        cat,
        &knobs,
        row.constraint.as_deref(),
        projection,
    ));
    // A violation of an invariant counts as checked even where it would not normally apply.
    for v in &r.violations {
        if !r.checked.contains(&v.invariant) {
            r.checked.push(v.invariant.clone());
        }
    }
    r
}

/// Runs the matrix. `progress` is told the planned row count, then once per finished row.
pub fn run(
    flake: &Flake,
    cat: &Catalogue,
    opts: &MatrixOptions,
    progress: &(dyn Fn(ProgressEvent) + Sync),
) -> Result<MatrixResult> {
    let started = Instant::now();
    let stats_before = nix::Stats::now();
    let rows = plan::plan(cat, &opts.strategy, &opts.pins)?;
    // The total is the rows the report will have (the baseline is not a row).
    progress(ProgressEvent::Planned(rows.len()));
    let is_reference = |r: &Row| {
        matches!(
            r.kind,
            RowKind::AllOff | RowKind::SwitchAlone(_) | RowKind::AreaKnob(_)
        )
    };
    let (reference_rows, other_rows): (Vec<&Row>, Vec<&Row>) =
        rows.iter().partition(|r| is_reference(r));

    // Phase 1: the fixture without paranoid, all-off and the alone rows, kept whole.
    let mut items: Vec<Item> = vec![Item {
        id: BASELINE_ID.into(),
        fixture: Some(FIXTURE.into()),
        without_paranoid: true,
        ..Default::default()
    }];
    items.extend(reference_rows.iter().map(|r| item_of(r)));
    let tick = |id: &str, _: &Outcome| {
        if id != BASELINE_ID {
            progress(ProgressEvent::Done)
        }
    };
    let phase1 = nix::evaluate(flake, items, &opts.eval, &tick)?;
    let outcomes: BTreeMap<String, Outcome> = phase1.into_iter().collect();
    let mut results: Vec<RowResult> = vec![];
    let interrupted = nix::interrupted();

    let reference = match outcomes.get(BASELINE_ID) {
        Some(Outcome::Projection(baseline)) => {
            let all_off = reference_rows
                .iter()
                .find(|r| r.kind == RowKind::AllOff)
                .and_then(|r| match outcomes.get(&r.id) {
                    Some(Outcome::Projection(p)) => Some(p),
                    _ => None,
                });
            let mut touched: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            if let Some(all_off) = all_off {
                for r in &reference_rows {
                    if let (
                        RowKind::SwitchAlone(s) | RowKind::AreaKnob(s),
                        Some(Outcome::Projection(p)),
                    ) = (&r.kind, outcomes.get(&r.id))
                    {
                        let name = s.split('=').next().unwrap_or("");
                        if let Some(k) = cat.knob(name) {
                            touched
                                .entry(k.area.clone())
                                .or_default()
                                .extend(invariants::differing_options(p, all_off));
                        }
                    }
                }
            }
            Some(Reference {
                baseline: baseline.clone(),
                touched,
            })
        }
        Some(Outcome::Failed { message }) => {
            return Err(Error::NixEval {
                context: format!("the `{FIXTURE}` fixture without paranoid (the baseline)"),
                message: message.clone(),
            });
        }
        None => None, // interrupted
    };
    for r in &reference_rows {
        if let Some(o) = outcomes.get(&r.id) {
            results.push(check_row(cat, r, o, reference.as_ref()));
        }
    }

    // Phase 2: everything else, checked as it arrives.
    let collected: Mutex<Vec<RowResult>> = Mutex::new(vec![]);
    if !interrupted && !nix::interrupted() {
        let by_id: BTreeMap<&str, &Row> = other_rows.iter().map(|r| (r.id.as_str(), *r)).collect();
        let on_done = |id: &str, o: &Outcome| {
            if let Some(row) = by_id.get(id) {
                let res = check_row(cat, row, o, reference.as_ref());
                collected.lock().expect("results lock").push(res);
            }
            progress(ProgressEvent::Done);
        };
        // Chunks bound the memory `evaluate` holds; the callback already did the work.
        let chunk = 4096;
        for part in other_rows.chunks(chunk) {
            let items: Vec<Item> = part.iter().map(|r| item_of(r)).collect();
            nix::evaluate_streaming(flake, items, &opts.eval, &on_done)?;
            if nix::interrupted() {
                break;
            }
        }
    }
    let mut rest = collected.into_inner().expect("results lock");
    let order: BTreeMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    results.append(&mut rest);
    results.sort_by_key(|r| order.get(r.id.as_str()).copied().unwrap_or(usize::MAX));

    Ok(MatrixResult {
        schema: 1,
        strategy: opts.strategy.name().into(),
        backend: opts.eval.backend.name().into(),
        jobs: opts.eval.jobs,
        batch_size: opts.eval.effective_batch_size(other_rows.len()),
        planned: rows.len(),
        evaluated: results.len(),
        interrupted: nix::interrupted(),
        wall_seconds: started.elapsed().as_secs_f64(),
        nix: nix::Stats::now().since(stats_before),
        touched: reference.map(|r| r.touched).unwrap_or_default(),
        invariants: tally(&results),
        rows: results,
    })
}

pub enum ProgressEvent {
    Planned(usize),
    Done,
}
