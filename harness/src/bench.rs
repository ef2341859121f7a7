//! `bench`: the same permutation set evaluated (a) one `nix` process per permutation, one at a
//! time and with `--jobs` at once, and (b) batched over the pool; permutations per second side
//! by side, measured in one run. Both paths must produce identical outcomes, which the bench
//! checks (a fast wrong answer is no speedup). Each path runs `--repeat` times, best kept.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::nix::{self, EvalOptions, Flake, Item, Outcome};
use crate::plan::Row;

#[derive(Debug, Clone, Serialize)]
pub struct Measure {
    pub label: String,
    pub processes: usize,
    pub jobs: usize,
    /// The fastest run.
    pub seconds: f64,
    pub per_second: f64,
    /// Every run's seconds.
    pub runs: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub permutations: usize,
    pub single_serial: Measure,
    pub single_parallel: Measure,
    pub batched: Measure,
    /// batched / single_serial: the headline.
    pub ratio: f64,
    /// batched / single_parallel: the same `--jobs` on both sides.
    pub ratio_same_jobs: f64,
    pub cores: usize,
}

/// Runs one path `repeat` times and keeps the fastest: the machine is shared, and the best of
/// several runs is the least disturbed one. Both paths get the same treatment.
fn measure(
    flake: &Flake,
    items: &[Item],
    opts: &EvalOptions,
    label: &str,
    repeat: usize,
) -> Result<(Measure, BTreeMap<String, Outcome>)> {
    let mut best: Option<(f64, BTreeMap<String, Outcome>)> = None;
    let mut all = vec![];
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let out = nix::evaluate(flake, items.to_vec(), opts, &|_, _| {})?;
        let seconds = started.elapsed().as_secs_f64();
        if nix::interrupted() {
            return Err(Error::Interrupted(format!("interrupted during {label}")));
        }
        all.push(seconds);
        if best.as_ref().is_none_or(|(s, _)| seconds < *s) {
            best = Some((seconds, out.into_iter().collect()));
        }
    }
    let (seconds, outcomes) = best.expect("at least one run");
    let size = opts.effective_batch_size(items.len());
    Ok((
        Measure {
            label: label.into(),
            processes: items.len().div_ceil(size),
            jobs: opts.jobs,
            seconds,
            per_second: items.len() as f64 / seconds,
            runs: all,
        },
        outcomes,
    ))
}

pub fn run(
    flake: &Flake,
    rows: &[Row],
    fixture: &str,
    opts: &EvalOptions,
    repeat: usize,
) -> Result<BenchResult> {
    let items: Vec<Item> = rows
        .iter()
        .map(|r| Item {
            id: r.id.clone(),
            fixture: Some(fixture.into()),
            knobs: r.knobs.clone(),
            constraint: r.constraint.clone(),
            without_impermanence: r.without_impermanence,
            ..Default::default()
        })
        .collect();
    // Warm-up: the flake's source is copied to the store once, before any clock starts.
    nix::evaluate(
        flake,
        items[..1.min(items.len())].to_vec(),
        &EvalOptions {
            jobs: 1,
            batch_size: 1,
            ..opts.clone()
        },
        &|_, _| {},
    )?;
    let single = EvalOptions {
        jobs: 1,
        batch_size: 1,
        ..opts.clone()
    };
    let (serial, a) = measure(
        flake,
        &items,
        &single,
        "(a) one nix process per permutation, one at a time",
        repeat,
    )?;
    let (parallel, a2) = measure(
        flake,
        &items,
        &EvalOptions {
            batch_size: 1,
            ..opts.clone()
        },
        "(a) one nix process per permutation, --jobs at once",
        repeat,
    )?;
    let (batched, b) = measure(flake, &items, opts, "(b) batched over the pool", repeat)?;
    for (id, o) in &a {
        if b.get(id) != Some(o) || a2.get(id) != Some(o) {
            return Err(Error::Other(format!("bench: permutation {id} evaluated differently batched and alone; the numbers would mean nothing")));
        }
    }
    Ok(BenchResult {
        permutations: items.len(),
        ratio: batched.per_second / serial.per_second,
        ratio_same_jobs: batched.per_second / parallel.per_second,
        single_serial: serial,
        single_parallel: parallel,
        batched,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    })
}
