//! Plans: which knob permutations the matrix evaluates. Strategies (exhaustive, pairwise,
//! one-at-a-time, random) plus the rows every plan carries: all-off, all-on, each switch alone,
//! each profile, and one row per catalogue constraint. Pairwise is a covering array built here
//! (IPOG: grow parameter by parameter, horizontally then vertically), proven by
//! [`uncovered_pairs`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};

use crate::catalogue::{Catalogue, Kind, Knob};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Every combination of the boolean switches and knobs (enums at their default).
    Exhaustive,
    /// Every value pair of every two non-meta knobs, booleans and enums.
    Pairwise,
    /// From all-off, each knob's each value alone (its area switched on).
    OneAtATime,
    /// `samples` rows of uniformly drawn values, reproducible from `seed`.
    Random { samples: usize, seed: u64 },
}

impl Strategy {
    pub fn parse(name: &str, samples: Option<usize>, seed: Option<u64>) -> Result<Strategy> {
        if samples == Some(0) {
            return Err(Error::Usage(
                "--samples 0: a random plan needs at least one row (--samples 1 or more)".into(),
            ));
        }
        if samples.is_some() && name != "random" {
            return Err(Error::Usage(format!(
                "--samples applies to --strategy random only, not `{name}`"
            )));
        }
        Ok(match name {
            "exhaustive" => Strategy::Exhaustive,
            "pairwise" => Strategy::Pairwise,
            "one-at-a-time" => Strategy::OneAtATime,
            "random" => Strategy::Random {
                samples: samples
                    .ok_or_else(|| Error::Usage("--strategy random needs --samples N".into()))?,
                seed: seed.unwrap_or(0),
            },
            other => {
                return Err(Error::Usage(format!(
                    "unknown strategy `{other}`: use exhaustive, pairwise, one-at-a-time or random"
                )))
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Exhaustive => "exhaustive",
            Strategy::Pairwise => "pairwise",
            Strategy::OneAtATime => "one-at-a-time",
            Strategy::Random { .. } => "random",
        }
    }
}

/// Why a row is in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "of", rename_all = "kebab-case")]
pub enum RowKind {
    AllOff,
    AllOn,
    /// One switch at one non-off value, every other switch off.
    SwitchAlone(String),
    /// One area's switches on, one of its knobs or parameters at a non-default value, every
    /// other area off: with the alone rows, teaches which options an area may touch.
    AreaKnob(String),
    /// `paranoid.enable = true` with this profile and nothing else.
    Profile(String),
    /// A row of the strategy.
    Generated,
    /// The explicit row of a catalogue constraint: must be refused with its marker.
    Constraint(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub id: String,
    #[serde(flatten)]
    pub kind: RowKind,
    /// Plain definitions of `paranoid.<knob>`.
    pub knobs: BTreeMap<String, Value>,
    pub constraint: Option<String>,
    #[serde(rename = "withoutImpermanence")]
    pub without_impermanence: bool,
}

/// A small, seedable generator (SplitMix64): reproducible plans without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A parameter of a covering array: a name and its values.
pub type Param = (String, Vec<Value>);

/// Builds a pairwise covering array over `params`: every value of every parameter meets every
/// value of every other parameter in at least one row. Cells no pair needs are `None`.
pub fn covering_array(params: &[Param]) -> Vec<Vec<Option<usize>>> {
    let n = params.len();
    if n == 0 {
        return vec![];
    }
    let sizes: Vec<usize> = params.iter().map(|p| p.1.len().max(1)).collect();
    // IPOG works best with the widest parameters first.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| sizes[*b].cmp(&sizes[*a]).then(a.cmp(b)));
    let mut rows: Vec<Vec<Option<usize>>> = Vec::new();
    if n == 1 {
        for v in 0..sizes[order[0]] {
            let mut r = vec![None; n];
            r[order[0]] = Some(v);
            rows.push(r);
        }
        return rows;
    }
    let (p0, p1) = (order[0], order[1]);
    for a in 0..sizes[p0] {
        for b in 0..sizes[p1] {
            let mut r = vec![None; n];
            r[p0] = Some(a);
            r[p1] = Some(b);
            rows.push(r);
        }
    }
    for k in 2..n {
        let pi = order[k];
        let earlier: Vec<usize> = order[..k].to_vec();
        // Uncovered pairs (pj, vj, vi) between the new parameter and the earlier ones.
        let mut uncovered: BTreeSet<(usize, usize, usize)> = BTreeSet::new();
        for &pj in &earlier {
            for vj in 0..sizes[pj] {
                for vi in 0..sizes[pi] {
                    uncovered.insert((pj, vj, vi));
                }
            }
        }
        // Horizontal growth: give each row the value of pi that covers the most new pairs.
        for row in rows.iter_mut() {
            let mut best = (0usize, 0usize);
            for vi in 0..sizes[pi] {
                let gain = earlier
                    .iter()
                    .filter(|&&pj| row[pj].is_some_and(|vj| uncovered.contains(&(pj, vj, vi))))
                    .count();
                if gain > best.1 || (vi == 0 && best.1 == 0) {
                    best = (vi, gain);
                }
            }
            if best.1 == 0 {
                continue; // leave it free for vertical growth
            }
            row[pi] = Some(best.0);
            for &pj in &earlier {
                if let Some(vj) = row[pj] {
                    uncovered.remove(&(pj, vj, best.0));
                }
            }
        }
        // Vertical growth: fit each remaining pair into a row whose cells are free, or add one.
        for (pj, vj, vi) in std::mem::take(&mut uncovered) {
            if rows.iter().any(|r| r[pj] == Some(vj) && r[pi] == Some(vi)) {
                continue;
            }
            let slot = rows.iter_mut().find(|r| {
                (r[pi] == Some(vi) || r[pi].is_none()) && (r[pj] == Some(vj) || r[pj].is_none())
            });
            match slot {
                Some(r) => {
                    r[pi] = Some(vi);
                    r[pj] = Some(vj);
                }
                None => {
                    let mut r = vec![None; n];
                    r[pi] = Some(vi);
                    r[pj] = Some(vj);
                    rows.push(r);
                }
            }
        }
    }
    rows
}

/// Every value pair of every two parameters that no row shows: (knob, value, knob, value).
/// Rows are knob maps; a knob missing from a row covers nothing.
pub fn uncovered_pairs(
    params: &[Param],
    rows: &[BTreeMap<String, Value>],
) -> Vec<(String, Value, String, Value)> {
    let mut missing = Vec::new();
    for (i, (a, va)) in params.iter().enumerate() {
        for (b, vb) in &params[i + 1..] {
            let seen: BTreeSet<(String, String)> = rows
                .iter()
                .filter_map(|r| Some((r.get(a)?.to_string(), r.get(b)?.to_string())))
                .collect();
            for x in va {
                for y in vb {
                    if !seen.contains(&(x.to_string(), y.to_string())) {
                        missing.push((a.clone(), x.clone(), b.clone(), y.clone()));
                    }
                }
            }
        }
    }
    missing
}

/// The parameters pairwise covers: every non-meta knob that is not pinned, with all its values.
pub fn pairwise_params(cat: &Catalogue, pins: &BTreeMap<String, Value>) -> Vec<Param> {
    cat.knobs
        .iter()
        .filter(|k| k.kind != Kind::Meta && !pins.contains_key(&k.name))
        .map(|k| (k.name.clone(), k.values.clone()))
        .collect()
}

fn is_exhaustive_knob(k: &Knob) -> bool {
    k.ty == "bool" && matches!(k.kind, Kind::Switch | Kind::Knob) && k.exhaustive
}

/// The value a knob takes where a row does not decide it: a switch's off value, otherwise
/// the knob's default.
fn resting_value(k: &Knob) -> Value {
    k.off.clone().unwrap_or_else(|| k.default.clone())
}

/// For every non-switch, non-meta knob and each of its non-default values: its area's
/// switches on, that value set (a knob only shows its effect with its area on).
fn area_knob_rows(cat: &Catalogue) -> Vec<(String, Value, BTreeMap<String, Value>)> {
    let mut out = vec![];
    for k in cat
        .knobs
        .iter()
        .filter(|k| matches!(k.kind, Kind::Knob | Kind::Parameter))
    {
        for v in k.values.iter().filter(|v| **v != k.default) {
            let mut extra: BTreeMap<String, Value> = cat
                .switches()
                .filter(|s| s.area == k.area)
                .filter_map(|s| Some((s.name.clone(), s.on_value()?)))
                .collect();
            if extra.is_empty() {
                continue;
            }
            extra.insert(k.name.clone(), v.clone());
            out.push((k.name.clone(), v.clone(), extra));
        }
    }
    out
}

/// Every switch at its off value: the base every row starts from.
pub fn all_off(cat: &Catalogue) -> BTreeMap<String, Value> {
    cat.switches()
        .filter_map(|k| Some((k.name.clone(), k.off.clone()?)))
        .collect()
}

/// Builds the plan. `pins` (from `--set`) hold in the strategy's rows, all-on and the profile
/// rows; the constraint rows (all off, then `set`) and the reference rows (all-off, alone,
/// area-knob) stay unpinned.
pub fn plan(
    cat: &Catalogue,
    strategy: &Strategy,
    pins: &BTreeMap<String, Value>,
) -> Result<Vec<Row>> {
    for name in pins.keys() {
        if cat.knob(name).is_none() {
            return Err(Error::Usage(format!("unknown knob `{name}`")));
        }
    }
    let base = all_off(cat);
    let with = |extra: &BTreeMap<String, Value>| -> BTreeMap<String, Value> {
        let mut k = base.clone();
        k.extend(extra.iter().map(|(a, b)| (a.clone(), b.clone())));
        k.extend(pins.iter().map(|(a, b)| (a.clone(), b.clone())));
        k
    };
    // The reference rows (all-off, each switch alone, each area with one knob changed) teach
    // knob-off.untouched what each area touches; pins would blur that, so they stay unpinned.
    let unpinned = |extra: &BTreeMap<String, Value>| -> BTreeMap<String, Value> {
        let mut k = base.clone();
        k.extend(extra.iter().map(|(a, b)| (a.clone(), b.clone())));
        k
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut push = |kind: RowKind, knobs: BTreeMap<String, Value>| {
        rows.push(Row {
            id: String::new(),
            kind,
            knobs,
            constraint: None,
            without_impermanence: false,
        });
    };

    push(RowKind::AllOff, unpinned(&BTreeMap::new()));
    let mut on = BTreeMap::new();
    for k in &cat.knobs {
        if let Some(v) = k.on_value() {
            on.insert(k.name.clone(), v);
        } else if k.kind == Kind::Knob && k.ty == "bool" {
            on.insert(k.name.clone(), json!(true));
        }
    }
    push(RowKind::AllOn, with(&on));
    for k in cat.switches() {
        for v in k.values.iter().filter(|v| Some(*v) != k.off.as_ref()) {
            push(
                RowKind::SwitchAlone(format!("{}={}", k.name, plain(v))),
                unpinned(&BTreeMap::from([(k.name.clone(), v.clone())])),
            );
        }
    }
    for (name, v, extra) in area_knob_rows(cat) {
        push(
            RowKind::AreaKnob(format!("{name}={}", plain(&v))),
            unpinned(&extra),
        );
    }
    if cat.knob("enable").is_some() && cat.knob("profile").is_some() {
        for p in cat.profiles.keys() {
            // Only enable + profile: any plain switch definition would beat the profile.
            let mut k: BTreeMap<String, Value> = pins.clone();
            k.insert("enable".into(), json!(true));
            k.insert("profile".into(), json!(p));
            push(RowKind::Profile(p.clone()), k);
        }
    }

    match strategy {
        Strategy::Exhaustive => {
            let dims: Vec<&Knob> = cat
                .knobs
                .iter()
                .filter(|k| is_exhaustive_knob(k) && !pins.contains_key(&k.name))
                .collect();
            if dims.len() > 24 {
                return Err(Error::Usage(format!(
                    "exhaustive over {} booleans is 2^{} rows: pin some with --set or use pairwise",
                    dims.len(),
                    dims.len()
                )));
            }
            for bits in 0u64..(1u64 << dims.len()) {
                let extra = dims
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (k.name.clone(), json!(bits >> i & 1 == 1)))
                    .collect();
                push(RowKind::Generated, with(&extra));
            }
        }
        Strategy::Pairwise => {
            let params = pairwise_params(cat, pins);
            for r in covering_array(&params) {
                let extra = params
                    .iter()
                    .zip(r)
                    .map(|((name, values), cell)| {
                        let k = cat.knob(name).expect("param from catalogue");
                        (
                            name.clone(),
                            cell.map(|i| values[i].clone())
                                .unwrap_or_else(|| resting_value(k)),
                        )
                    })
                    .collect();
                push(RowKind::Generated, with(&extra));
            }
        }
        Strategy::OneAtATime => {
            // The switch-alone and area-knob rows above are exactly "one knob at a time".
        }
        Strategy::Random { samples, seed } => {
            let mut rng = Rng::new(*seed);
            for _ in 0..*samples {
                let extra = cat
                    .knobs
                    .iter()
                    .filter(|k| k.kind != Kind::Meta && !k.values.is_empty())
                    .map(|k| (k.name.clone(), k.values[rng.below(k.values.len())].clone()))
                    .collect();
                push(RowKind::Generated, with(&extra));
            }
        }
    }

    for c in &cat.constraints {
        // Exactly as docs/harness.md defines it: all switches off, then `set` (no pins: a
        // pinned switch could trip another guard and blur which one refused the row).
        let k = unpinned(&c.set);
        rows.push(Row {
            id: String::new(),
            kind: RowKind::Constraint(c.id.clone()),
            knobs: k,
            constraint: Some(c.id.clone()),
            without_impermanence: c.without_impermanence,
        });
    }

    // Generated rows equal to a fixed row add nothing.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    let mut n = 0usize;
    for mut row in rows {
        let key = format!(
            "{}|{:?}",
            serde_json::to_string(&row.knobs).unwrap_or_default(),
            row.constraint
        );
        if row.kind == RowKind::Generated && seen.contains(&key) {
            continue;
        }
        seen.insert(key);
        row.id = match &row.kind {
            RowKind::AllOff => "all-off".into(),
            RowKind::AllOn => "all-on".into(),
            RowKind::SwitchAlone(s) => format!("alone:{s}"),
            RowKind::AreaKnob(s) => format!("area-knob:{s}"),
            RowKind::Profile(p) => format!("profile:{p}"),
            RowKind::Constraint(c) => format!("constraint:{c}"),
            RowKind::Generated => {
                n += 1;
                format!("r{n:05}")
            }
        };
        out.push(row);
    }
    Ok(out)
}

/// A plan as the command line asks for it: `--strategy` by name, `--samples` and `--seed` for
/// random, and `--set knob=value` pins.
#[derive(Debug, Clone, Default)]
pub struct PlanSpec {
    pub strategy: String,
    pub samples: Option<usize>,
    pub seed: Option<u64>,
    pub set: Vec<String>,
}

impl PlanSpec {
    /// The strategy, the pins and the plan's rows; unknown names and values are usage errors.
    pub fn rows(&self, cat: &Catalogue) -> Result<(Strategy, BTreeMap<String, Value>, Vec<Row>)> {
        let strategy = Strategy::parse(&self.strategy, self.samples, self.seed)?;
        let mut pins = BTreeMap::new();
        for s in &self.set {
            let (k, v) = cat.parse_setting(s)?;
            pins.insert(k, v);
        }
        let rows = plan(cat, &strategy, &pins)?;
        Ok((strategy, pins, rows))
    }
}

/// What `plan` reports: the rows, how many the strategy generated, and (pairwise) how many value
/// pairs no generated row covers.
#[derive(Debug, Clone)]
pub struct PlanSummary {
    pub strategy: Strategy,
    pub rows: Vec<Row>,
    pub generated: usize,
    pub uncovered_pairs: usize,
}

impl PlanSummary {
    /// Builds the plan and, for pairwise, proves its coverage.
    pub fn build(cat: &Catalogue, spec: &PlanSpec) -> Result<PlanSummary> {
        let (strategy, pins, rows) = spec.rows(cat)?;
        let generated: Vec<_> = rows
            .iter()
            .filter(|r| r.kind == RowKind::Generated)
            .map(|r| r.knobs.clone())
            .collect();
        let uncovered_pairs = if strategy == Strategy::Pairwise {
            uncovered_pairs(&pairwise_params(cat, &pins), &generated).len()
        } else {
            0
        };
        Ok(PlanSummary {
            strategy,
            generated: generated.len(),
            rows,
            uncovered_pairs,
        })
    }

    /// 0 when every pair is covered, else 1.
    pub fn exit_code(&self) -> u8 {
        if self.uncovered_pairs == 0 {
            crate::error::exit::OK
        } else {
            crate::error::exit::FAILED
        }
    }
}

/// A JSON value as a person writes it on the command line (`true`, `removed`).
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::tests::small;

    fn random_params(rng: &mut Rng) -> Vec<Param> {
        let n = 2 + rng.below(12);
        (0..n)
            .map(|i| {
                let m = 2 + rng.below(4);
                (
                    format!("k{i}"),
                    (0..m).map(|v| json!(format!("v{v}"))).collect(),
                )
            })
            .collect()
    }

    fn materialise(params: &[Param], rows: &[Vec<Option<usize>>]) -> Vec<BTreeMap<String, Value>> {
        rows.iter()
            .map(|r| {
                params
                    .iter()
                    .zip(r)
                    .filter_map(|((name, values), c)| c.map(|i| (name.clone(), values[i].clone())))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn covering_arrays_cover_every_pair_of_random_catalogues() {
        for seed in 0..60u64 {
            let mut rng = Rng::new(seed);
            let params = random_params(&mut rng);
            let rows = covering_array(&params);
            let missing = uncovered_pairs(&params, &materialise(&params, &rows));
            assert!(
                missing.is_empty(),
                "seed {seed}: {} pairs uncovered, e.g. {:?}",
                missing.len(),
                missing.first()
            );
            // Far smaller than exhaustive, and at least the product of the two widest.
            let mut sizes: Vec<usize> = params.iter().map(|p| p.1.len()).collect();
            sizes.sort_unstable_by(|a, b| b.cmp(a));
            assert!(rows.len() >= sizes[0] * sizes[1]);
            assert!(
                rows.len() <= 3 * sizes[0] * sizes[1] + 10,
                "seed {seed}: {} rows for {sizes:?}",
                rows.len()
            );
        }
    }

    #[test]
    fn the_coverage_checker_notices_a_missing_pair() {
        let params: Vec<Param> = vec![
            ("a".into(), vec![json!(0), json!(1)]),
            ("b".into(), vec![json!(0), json!(1)]),
        ];
        let full = materialise(&params, &covering_array(&params));
        assert!(uncovered_pairs(&params, &full).is_empty());
        for drop in 0..full.len() {
            let mut fewer = full.clone();
            fewer.remove(drop);
            assert_eq!(
                uncovered_pairs(&params, &fewer).len(),
                1,
                "dropping row {drop}"
            );
        }
        // A row that does not mention a knob covers none of its pairs.
        let partial = vec![BTreeMap::from([("a".to_string(), json!(0))])];
        assert_eq!(uncovered_pairs(&params, &partial).len(), 4);
    }

    #[test]
    fn pairwise_plans_cover_every_non_meta_knob_and_value() {
        let cat = small();
        let rows = plan(&cat, &Strategy::Pairwise, &BTreeMap::new()).unwrap();
        let generated: Vec<_> = rows
            .iter()
            .filter(|r| r.kind == RowKind::Generated)
            .map(|r| r.knobs.clone())
            .collect();
        let params = pairwise_params(&cat, &BTreeMap::new());
        assert_eq!(params.len(), 4);
        assert!(uncovered_pairs(&params, &generated).is_empty());
        for id in [
            "all-off",
            "all-on",
            "alone:ssh.enable=true",
            "alone:sudo.mode=removed",
            "alone:sudo.mode=wheel-only",
            "constraint:c1",
        ] {
            assert!(rows.iter().any(|r| r.id == id), "missing {id}");
        }
        let all_off = rows.iter().find(|r| r.id == "all-off").unwrap();
        assert_eq!(all_off.knobs["sudo.mode"], json!("upstream"));
        assert_eq!(all_off.knobs["ssh.enable"], json!(false));
    }

    #[test]
    fn exhaustive_enumerates_the_boolean_switches_and_knobs() {
        let cat = small();
        let rows = plan(&cat, &Strategy::Exhaustive, &BTreeMap::new()).unwrap();
        let generated: Vec<_> = rows
            .iter()
            .filter(|r| r.kind == RowKind::Generated)
            .collect();
        // ssh.enable x ssh.allowSFTP: generated rows equal to a fixed row (here the area-knob
        // row ssh.enable=true ssh.allowSFTP=false) are not repeated.
        let combos: BTreeSet<String> = rows
            .iter()
            .filter(|r| r.constraint.is_none() && r.knobs.contains_key("ssh.allowSFTP"))
            .map(|r| format!("{}{}", r.knobs["ssh.enable"], r.knobs["ssh.allowSFTP"]))
            .collect();
        assert_eq!(combos.len(), 4);
        assert_eq!(generated.len(), 3);
        assert!(generated
            .iter()
            .all(|r| r.knobs["sudo.mode"] == json!("upstream")));
    }

    #[test]
    fn pins_hold_in_the_strategy_rows_only() {
        let cat = small();
        let pins = BTreeMap::from([("sudo.mode".to_string(), json!("wheel-only"))]);
        let rows = plan(
            &cat,
            &Strategy::Random {
                samples: 20,
                seed: 3,
            },
            &pins,
        )
        .unwrap();
        for r in &rows {
            let want = match r.kind {
                RowKind::Constraint(_) => json!("removed"), // c1's set
                RowKind::AllOff => json!("upstream"),
                RowKind::SwitchAlone(ref s) if s.starts_with("sudo.mode=") => {
                    r.knobs["sudo.mode"].clone()
                }
                RowKind::SwitchAlone(_) | RowKind::AreaKnob(_) => json!("upstream"),
                _ => json!("wheel-only"),
            };
            assert_eq!(r.knobs["sudo.mode"], want, "{}", r.id);
        }
        assert!(rows.iter().filter(|r| r.kind == RowKind::Generated).count() >= 4);
        let a = plan(
            &cat,
            &Strategy::Random {
                samples: 20,
                seed: 3,
            },
            &pins,
        )
        .unwrap();
        assert_eq!(a, rows, "same seed, same plan");
    }
}
