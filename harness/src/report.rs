//! Reporters: they take finished results and format them; nothing here runs anything.
//! Human output is short and scannable; JSON is the documented schema (docs/harness.md);
//! JUnit has one testcase per matrix row.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::bench::BenchResult;
use crate::catalogue::Catalogue;
use crate::check::CheckResult;
use crate::matrix::{MatrixResult, ProgressEvent};
use crate::mounts::Table;
use crate::plan::{plain, PlanSummary};
use crate::sshd::SshdConfig;

/// The first `n` lines of a message, with a note of how many were cut.
pub fn head(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.trim_end().lines().collect();
    if lines.len() <= n {
        lines.join("\n")
    } else {
        format!(
            "{}\n… ({} more lines)",
            lines[..n].join("\n"),
            lines.len() - n
        )
    }
}

fn indent(s: &str, by: &str) -> String {
    s.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn matrix_human(r: &MatrixResult) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "matrix: {} plan, {} backend: {} of {} rows evaluated in {:.1} s ({} jobs, batches of {})",
        r.strategy, r.backend, r.evaluated, r.planned, r.wall_seconds, r.jobs, r.batch_size
    );
    let n = &r.nix;
    let _ = writeln!(
        o,
        "nix: {} processes; {} batches died and {} items were re-run alone; {} killed over --max-memory, {} at the timeout",
        n.processes, n.batches_died, n.rerun_alone, n.over_memory, n.timed_out
    );
    let _ = writeln!(o);
    let _ = writeln!(o, "{:<28} {:>8} {:>7}", "invariant", "checked", "failed");
    for (id, t) in &r.invariants {
        let mark = if t.failed > 0 { "  <-" } else { "" };
        let _ = writeln!(o, "{:<28} {:>8} {:>7}{mark}", id, t.checked, t.failed);
    }
    let failing: Vec<_> = r.rows.iter().filter(|x| !x.violations.is_empty()).collect();
    if !failing.is_empty() {
        let _ = writeln!(o, "\nviolations ({} rows):", failing.len());
        for row in failing {
            for v in &row.violations {
                let _ = writeln!(
                    o,
                    "  {} {}: {}",
                    row.id,
                    v.invariant,
                    head(&v.message, 4).replace('\n', "\n      ")
                );
                let _ = writeln!(o, "    fix: {}", v.fix);
            }
        }
    }
    let errors: Vec<_> = r.rows.iter().filter(|x| x.error.is_some()).collect();
    if !errors.is_empty() {
        let _ = writeln!(o, "\nevaluation errors ({} rows):", errors.len());
        for row in errors {
            let _ = writeln!(o, "  {} ({}):", row.id, knob_summary(row));
            let _ = writeln!(
                o,
                "{}",
                indent(&head(row.error.as_deref().unwrap_or(""), 6), "    ")
            );
        }
    }
    let _ = writeln!(o);
    if r.interrupted {
        let _ = writeln!(
            o,
            "INTERRUPTED: {} of {} rows finished; the counts above cover those only.",
            r.evaluated, r.planned
        );
    } else if r.ok() {
        let _ = writeln!(o, "result: ok, 0 unexpected failures in {} rows", r.planned);
    } else {
        let _ = writeln!(
            o,
            "result: FAILED, {} of {} rows with unexpected failures",
            r.failures(),
            r.planned
        );
    }
    o
}

fn knob_summary(row: &crate::matrix::RowResult) -> String {
    let mut parts: Vec<String> = row
        .knobs
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::plan::plain(v)))
        .collect();
    if parts.len() > 12 {
        parts.truncate(12);
        parts.push("…".into());
    }
    parts.join(" ")
}

pub fn matrix_json(r: &MatrixResult) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    v["ok"] = json!(r.ok());
    v["failures"] = json!(r.failures());
    v
}

/// JUnit: one testsuite per run, one testcase per row (classname `paranoid.matrix.<strategy>`),
/// a failure per violated invariant (type = invariant id), an error for a row that did not
/// evaluate.
pub fn matrix_junit(r: &MatrixResult) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("paranoid-harness");
    let mut suite = TestSuite::new(format!("matrix-{}-{}", r.strategy, r.backend));
    for row in &r.rows {
        let status = if let Some(e) = &row.error {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message("evaluation failed");
            s.set_type("nix.eval");
            s.set_description(e.clone());
            s
        } else if let Some(first) = row.violations.first() {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!(
                "{} invariant(s) violated, first {}",
                row.violations.len(),
                first.invariant
            ));
            s.set_type(first.invariant.clone());
            s.set_description(
                row.violations
                    .iter()
                    .map(|v| format!("{}: {}\nfix: {}", v.invariant, v.message, v.fix))
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            );
            s
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(row.id.clone(), status);
        case.set_classname(format!("paranoid.matrix.{}", r.strategy));
        case.add_property(quick_junit::Property::new("checked", row.checked.join(" ")));
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    report.to_string().unwrap_or_default()
}

pub fn check_human(r: &CheckResult) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "paranoid-harness check: {} (expected posture: host knobs, `{}` profile where an area is off)", r.target, r.profile);
    if !r.profile_areas.is_empty() {
        let _ = writeln!(
            o,
            "areas the host leaves off but the profile expects: {}",
            r.profile_areas.join(", ")
        );
    }
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {}", head(w, 4).replace('\n', "\n  "));
    }
    if let Some(v) = r.judged_by.get("sshd") {
        let _ = writeln!(o, "{}", sshd_judged_by(v));
    }
    if r.violations.is_empty() {
        let _ = writeln!(
            o,
            "clean: {} invariants checked, 0 violations",
            r.checked.len()
        );
    } else {
        let _ = writeln!(
            o,
            "{} violation(s) of {} invariants checked:\n",
            r.violations.len(),
            r.checked.len()
        );
        violations_human(&mut o, &r.violations, "");
    }
    for e in &r.specialisations {
        entry_check_human(&mut o, e, r.checked.len());
    }
    o.push_str(&unjudged_human(&r.unjudged));
    o
}

/// "not judged offline: N definitions (…)" and the effects among them; nothing when none.
pub fn unjudged_human(u: &crate::unjudged::Unjudged) -> String {
    let mut o = String::new();
    if u.count == 0 {
        return o;
    }
    let _ = writeln!(
        o,
        "not judged offline: {} definition{} ({}): the surface does not declare these options, so no invariant reads them",
        u.count,
        if u.count == 1 { "" } else { "s" },
        u.summary(8)
    );
    if !u.effects.is_empty() {
        let _ = writeln!(o, "effects that could not be judged ({}):", u.effects.len());
        for e in &u.effects {
            let _ = writeln!(o, "  ? {}: {}", e.option, e.effect);
        }
    }
    o
}

fn violations_human(o: &mut String, violations: &[crate::invariants::Violation], by: &str) {
    for v in violations {
        let _ = writeln!(
            o,
            "{by}- [{}] {}",
            v.invariant,
            head(&v.message, 6).replace('\n', &format!("\n{by}    "))
        );
        let _ = writeln!(o, "{by}  fix: {}", v.fix);
    }
}

/// One boot entry's section of `check`: what it relaxes (asked or not), the violations that
/// are those relaxations, and what must still hold there.
fn entry_check_human(o: &mut String, e: &crate::specialisations::EntryCheck, checked: usize) {
    let _ = writeln!(
        o,
        "\nboot entry \"{}\"{}: held to the same posture",
        e.name,
        if e.break_glass { " (break glass, paranoid.breakGlass)" } else { " (specialisation)" }
    );
    if e.relaxations.is_empty() {
        let _ = writeln!(o, "  relaxes nothing");
    }
    for r in &e.relaxations {
        let tag = match (r.asked, r.observed) {
            (true, true) => "relaxed as asked",
            (true, false) => "asked, no change",
            _ => "RELAXED WITHOUT BEING ASKED (paranoid.breakGlass does not ask for it)",
        };
        let _ = writeln!(o, "  {tag}: {}: {}", r.id, r.what);
    }
    if !e.asked.is_empty() {
        let ids: std::collections::BTreeSet<&str> = e.asked.iter().map(|v| v.invariant.as_str()).collect();
        let _ = writeln!(
            o,
            "  {} violation(s) are those relaxations: {}",
            e.asked.len(),
            ids.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    if e.violations.is_empty() {
        let _ = writeln!(o, "  what must still hold holds: {checked} invariants checked, 0 other violations");
    } else {
        let _ = writeln!(o, "  {} violation(s) of what must still hold in this entry:", e.violations.len());
        violations_human(o, &e.violations, "  ");
    }
}

/// One line: who judged sshd, and why sshd itself could not when it did not.
pub fn sshd_judged_by(v: &paranoid_sandbox::checks::sshd_model::Verdict) -> String {
    let sshd = v.sshd.clone().unwrap_or_else(|| "sshd".into());
    if v.by != "model+sshd" {
        return format!(
            "sshd: judged by paranoid's model only ({})",
            v.why.as_deref().unwrap_or("sshd was not asked")
        );
    }
    if let Some(r) = &v.refused {
        return format!("sshd: judged by paranoid's model, confirmed by sshd -t ({sshd}): sshd refuses this file, as the model says ({})", head(r, 1));
    }
    if v.disagreements.is_empty() {
        format!(
            "sshd: judged by paranoid's model, confirmed by sshd -T -C ({sshd}) for {} connections",
            v.connections
        )
    } else {
        let contexts: std::collections::BTreeSet<&str> =
            v.disagreements.iter().map(|d| d.context.as_str()).collect();
        format!(
            "sshd: judged by paranoid's model, which sshd -T -C ({sshd}) contradicts on {} of {} connections (see ssh.model-agrees)",
            contexts.len(),
            v.connections
        )
    }
}

pub fn check_json(r: &CheckResult) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    v["ok"] = json!(r.ok());
    v
}

/// `eval --format human`: what a reviewer scans first.
pub fn eval_human(p: &Value, cat: Option<&crate::catalogue::Catalogue>) -> String {
    let mut o = String::new();
    let knobs = crate::invariants::Proj(p).knobs();
    let get = |k: &str| {
        knobs
            .get(k)
            .map(crate::plan::plain)
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(
        o,
        "host {} ({} backend), paranoid {}, profile {}",
        p.get("host").and_then(Value::as_str).unwrap_or("?"),
        p.get("backend").and_then(Value::as_str).unwrap_or("?"),
        if p.get("paranoidImported").and_then(Value::as_bool) == Some(true) {
            format!("imported, enable = {}", get("enable"))
        } else {
            "not imported".into()
        },
        get("profile"),
    );
    let on: Vec<String> = match cat {
        // Each switch that is not at its off value, as the catalogue defines them.
        Some(cat) => cat
            .switches()
            .filter_map(|k| {
                let v = knobs.get(&k.name)?;
                (Some(v) != k.off.as_ref()).then(|| {
                    if v.is_boolean() {
                        k.name.clone()
                    } else {
                        format!("{}={}", k.name, crate::plan::plain(v))
                    }
                })
            })
            .collect(),
        None => knobs
            .iter()
            .filter(|(k, v)| k.ends_with(".enable") && **v == Value::Bool(true) && *k != "enable")
            .map(|(k, _)| k.clone())
            .collect(),
    };
    let _ = writeln!(
        o,
        "switches on: {}",
        if on.is_empty() {
            "none".into()
        } else {
            on.join(", ")
        }
    );
    match p.pointer("/rendered/sshd_config").and_then(Value::as_str) {
        Some(text) => {
            let c = SshdConfig::parse(text);
            let keys = [
                "PasswordAuthentication",
                "KbdInteractiveAuthentication",
                "AuthenticationMethods",
                "PermitRootLogin",
                "AllowTcpForwarding",
                "AllowUsers",
            ];
            let vals: Vec<String> = keys
                .iter()
                .map(|k| format!("{k} {}", c.get(k).unwrap_or_else(|| "-".into())))
                .collect();
            let _ = writeln!(
                o,
                "sshd: {}; sftp {}",
                vals.join(", "),
                if c.subsystems.contains_key("sftp") {
                    "on"
                } else {
                    "off"
                }
            );
        }
        None => {
            let _ = writeln!(o, "sshd: not enabled");
        }
    }
    let table = Table::from_projection(p);
    let _ = writeln!(o, "mounts (effective noexec/nosuid/nodev):");
    let _ = writeln!(
        o,
        "  {:<22} {:<7} {:<19}  from",
        "mount point", "type", "flags"
    );
    for m in table
        .mounts
        .iter()
        .filter(|m| m.origin != "special" || m.mount_point == "/dev/shm")
    {
        let f = table.flags(m);
        let flag = |b: bool, s: &str| {
            if b {
                s.to_string()
            } else {
                "-".repeat(s.len())
            }
        };
        let _ = writeln!(
            o,
            "  {:<22} {:<7} {} {} {}  ({})",
            m.mount_point,
            m.fs_type,
            flag(f.noexec, "noexec"),
            flag(f.nosuid, "nosuid"),
            flag(f.nodev, "nodev"),
            m.origin
        );
    }
    let list = |key: &str| {
        p.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let (assertions, warnings) = (list("assertions"), list("warnings"));
    let _ = writeln!(o, "failed assertions: {}", assertions.len());
    for a in &assertions {
        let _ = writeln!(o, "{}", indent(a, "  ! "));
    }
    let _ = writeln!(o, "warnings: {}", warnings.len());
    for w in &warnings {
        let _ = writeln!(o, "{}", indent(w, "  ~ "));
    }
    for (name, entry) in crate::specialisations::entries(p) {
        entry_eval_human(&mut o, p, name, entry, cat);
    }
    o.push_str(&unjudged_human(&crate::unjudged::Unjudged::from_projection(p)));
    o
}

/// `eval`'s section for another boot entry: how it is reached, what it relaxes against the main
/// entry, its admin path, then the same summary as the main entry's.
fn entry_eval_human(o: &mut String, main: &Value, name: &str, entry: &Value, cat: Option<&crate::catalogue::Catalogue>) {
    use crate::specialisations as sp;
    let switchable = entry.pointer("/options/system.switch.enable").and_then(Value::as_bool) != Some(false);
    let _ = writeln!(
        o,
        "\nboot entry \"{name}\" ({}; {})",
        if sp::is_break_glass(main, name) { "break glass, paranoid.breakGlass" } else { "specialisation" },
        if switchable {
            "has switch-to-configuration: a running system can be switched into it"
        } else {
            "no switch-to-configuration: reachable from the boot menu only"
        }
    );
    let relaxed = sp::relaxations(main, entry, &sp::asked(main, name));
    if relaxed.is_empty() {
        let _ = writeln!(o, "  relaxed against the main entry: nothing");
    }
    for r in &relaxed {
        let _ = writeln!(
            o,
            "  relaxed against the main entry: {} ({}){}",
            r.id,
            r.what,
            if r.asked { "" } else { " NOT ASKED" }
        );
    }
    let admin = crate::effective::Effective::of(entry).admin_path;
    match admin {
        Some(a) if a.ok => {
            let ways: Vec<String> = a
                .paths
                .iter()
                .map(|w| {
                    let via = w.escalation.get("via").and_then(Value::as_str).unwrap_or("?");
                    if via == "root" {
                        format!("{} over {}:{}", w.account, w.interface, w.port)
                    } else {
                        format!("{} over {}:{} then {via}", w.account, w.interface, w.port)
                    }
                })
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let _ = writeln!(o, "  admin path: {}", ways.join(", "));
        }
        Some(a) => {
            let links: Vec<String> = a
                .broken
                .iter()
                .filter(|b| !b.links.is_empty())
                .map(|b| format!("{}: {}", b.account, b.links.join("; ")))
                .collect();
            let _ = writeln!(o, "  admin path: NONE ({})", links.join(" | "));
        }
        None => {
            let _ = writeln!(o, "  admin path: not judged");
        }
    }
    let _ = writeln!(o, "{}", indent(eval_human(entry, cat).trim_end(), "  "));
}

/// `knobs --format human`: one line per knob, then the constraints.
pub fn knobs_human(cat: &Catalogue) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<32} {:<9} {:<30} {:<10} profiles",
        "knob", "kind", "values", "off"
    );
    for k in &cat.knobs {
        let values = k.values.iter().map(plain).collect::<Vec<_>>().join("|");
        let profiles = k
            .profiles
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(p, v)| format!("{p}={}", plain(v)))
            .collect::<Vec<_>>()
            .join(" ");
        let kind = serde_json::to_value(k.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "{:<32} {:<9} {:<30} {:<10} {}",
            k.name,
            kind,
            values,
            k.off.as_ref().map(plain).unwrap_or_default(),
            profiles
        );
    }
    let _ = writeln!(o, "\nconstraints (must be refused with [paranoid:<id>]):");
    for c in &cat.constraints {
        let _ = writeln!(o, "  {:<28} {}", c.id, c.description);
    }
    o
}

/// `knobs --format json`: the catalogue as read.
pub fn knobs_json(cat: &Catalogue) -> Value {
    serde_json::to_value(cat).unwrap_or_default()
}

/// `plan --format human`: one line per row, then the counts.
pub fn plan_human(p: &PlanSummary) -> String {
    let mut o = String::new();
    for r in &p.rows {
        let _ = writeln!(
            o,
            "{:<36} {}",
            r.id,
            r.knobs
                .iter()
                .map(|(k, v)| format!("{k}={}", plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let _ = writeln!(
        o,
        "{} rows ({} generated by {}); uncovered pairs: {}",
        p.rows.len(),
        p.generated,
        p.strategy.name(),
        p.uncovered_pairs
    );
    o
}

/// `plan --format json`: `{ strategy, rows, uncoveredPairs }`.
pub fn plan_json(p: &PlanSummary) -> Value {
    json!({ "strategy": p.strategy.name(), "rows": p.rows, "uncoveredPairs": p.uncovered_pairs })
}

/// `bench --format human`: the three paths side by side, then the ratios.
pub fn bench_human(r: &BenchResult) -> String {
    let mut o = format!(
        "bench: {} permutations on {} cores\n",
        r.permutations, r.cores
    );
    for m in [&r.single_serial, &r.single_parallel, &r.batched] {
        let runs = m
            .runs
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(" ");
        o.push_str(&format!("  {:<55} {:>5} processes, {} jobs: {:>8.2} s  {:>8.1} permutations/s  (runs: {runs} s)\n", m.label, m.processes, m.jobs, m.seconds, m.per_second));
    }
    o.push_str(&format!(
        "  ratio (b) / (a, one at a time): {:.1}x\n",
        r.ratio
    ));
    o.push_str(&format!(
        "  ratio (b) / (a, same --jobs):   {:.1}x\n",
        r.ratio_same_jobs
    ));
    o
}

/// The time the rest takes at the mean rate so far: `elapsed / pos` per row left; unknown
/// before the first row.
pub fn mean_eta(elapsed: std::time::Duration, pos: u64, len: u64) -> Option<std::time::Duration> {
    (pos > 0).then(|| elapsed.mul_f64(len.saturating_sub(pos) as f64 / pos as f64))
}

/// The matrix's progress bar on stderr, drawn only when stderr is a terminal.
///
/// Rows arrive a batch at a time, all at once; drawn one by one, the first of a batch would be
/// shown alone after the whole start-up and any rate would say the run takes ~100 times that
/// (indicatif's own {eta} did). So finished rows are counted as they come and the bar is moved
/// by a ticker a few times a second, a burst at once; the ETA is the mean time per row so far
/// ([`mean_eta`]).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ticker: std::sync::Mutex<Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
}

/// How often the bar takes the rows finished since.
const PROGRESS_TICK: std::time::Duration = std::time::Duration::from_millis(200);

impl Progress {
    pub fn on_terminal() -> Progress {
        use std::io::IsTerminal as _;
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} rows {rate} eta {mean_eta}",
                )
                .map(|s| {
                    s.with_key(
                        "rate",
                        |st: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let secs = st.elapsed().as_secs_f64();
                            let _ = if secs > 0.0 {
                                write!(w, "{:.1}/s", st.pos() as f64 / secs)
                            } else {
                                write!(w, "-/s")
                            };
                        },
                    )
                    .with_key(
                        "mean_eta",
                        |st: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = match mean_eta(st.elapsed(), st.pos(), st.len().unwrap_or(0)) {
                                Some(d) => write!(w, "{}s", d.as_secs_f64().ceil() as u64),
                                None => write!(w, "-"),
                            };
                        },
                    )
                })
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let ticker = bar.clone().map(|b| {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let done = done.clone();
            let h = std::thread::spawn(move || loop {
                let stop = rx.recv_timeout(PROGRESS_TICK);
                b.set_position(done.load(std::sync::atomic::Ordering::SeqCst));
                if !matches!(stop, Err(std::sync::mpsc::RecvTimeoutError::Timeout)) {
                    break;
                }
            });
            (tx, h)
        });
        Progress {
            bar,
            done,
            ticker: std::sync::Mutex::new(ticker),
        }
    }

    pub fn event(&self, e: ProgressEvent) {
        if let Some(b) = &self.bar {
            match e {
                ProgressEvent::Planned(n) => {
                    b.set_length(n as u64);
                    b.reset_elapsed();
                }
                ProgressEvent::Done => {
                    self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
    }

    /// Clears the bar before the report is printed.
    pub fn finish(&self) {
        if let Some((tx, h)) = self.ticker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(());
            let _ = h.join();
        }
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
