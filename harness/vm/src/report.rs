//! What people and machines read: progress lines (one per event), the final summary, and the
//! JSON document. Reporters only read a finished [`RunReport`] or an [`Event`].

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use crate::discover::Plan;
use crate::run::{Event, RunReport, Status};

/// One line of progress for an event.
pub fn progress_line(event: &Event) -> String {
    match event {
        Event::Planned { flake, system, checks, runnable, jobs, log_dir } => format!(
            "paranoid-harness vm: {runnable} of {checks} VM check(s) of {flake} ({system}) to run, {jobs} at a time; logs in {}",
            log_dir.display()
        ),
        Event::Refused { name, reason } => format!("[refused] {name}: {reason}"),
        Event::Started { name, attempt, attempts } if *attempt > 1 => format!("[start  ] {name} (attempt {attempt}/{attempts})"),
        Event::Started { name, .. } => format!("[start  ] {name}"),
        Event::Retrying { name, attempt, attempts, status, seconds } => format!(
            "[retry  ] {name}: attempt {attempt}/{attempts} {} after {seconds:.1}s; marked flaky, running it again",
            status.as_str()
        ),
        Event::Finished { name, status, seconds, attempt, log, reason } => {
            let tag = match status {
                Status::Passed => "pass   ",
                Status::Failed => "FAIL   ",
                Status::TimedOut => "TIMEOUT",
                Status::Interrupted => "stopped",
                Status::Refused => "refused",
                Status::NotRun => "not run",
            };
            let attempts = if *attempt > 1 { format!(" ({attempt} attempts)") } else { String::new() };
            match (status, reason) {
                (Status::Passed, _) => format!("[{tag}] {name} {seconds:.1}s{attempts}"),
                (_, Some(reason)) => format!("[{tag}] {name} {seconds:.1}s{attempts}: {reason}; log: {}", log.display()),
                (_, None) => format!("[{tag}] {name} {seconds:.1}s{attempts}; log: {}", log.display()),
            }
        }
    }
}

/// Counts by status, in a fixed order.
pub fn summary_counts(report: &RunReport) -> Vec<(Status, usize)> {
    [
        Status::Passed,
        Status::Failed,
        Status::TimedOut,
        Status::Refused,
        Status::Interrupted,
        Status::NotRun,
    ]
    .into_iter()
    .map(|s| (s, report.count(s)))
    .filter(|(_, n)| *n > 0)
    .collect()
}

/// The summary for people: a table, then every non-pass with its reason and log tail.
pub fn human(report: &RunReport, junit: Option<&Path>) -> String {
    let mut out = String::new();
    let counts: Vec<String> = summary_counts(report)
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    let busy: f64 = report.checks.iter().map(|c| c.seconds).sum();
    let _ = writeln!(
        out,
        "VM checks: {} in {:.1}s wall ({busy:.1}s of builds, {} at a time)",
        counts.join(", "),
        report.wall_seconds,
        report.jobs
    );
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for c in &report.checks {
        let attempts = if c.attempts.len() > 1 {
            format!("  {} attempts", c.attempts.len())
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {:<11} {:<width$} {:>8.1}s{attempts}",
            c.status.as_str(),
            c.name,
            c.seconds
        );
    }
    for c in report.checks.iter().filter(|c| c.status != Status::Passed) {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "--- {} {}: {}",
            c.name,
            c.status.as_str(),
            c.reason.as_deref().unwrap_or("(no reason recorded)")
        );
        if !c.log_tail.is_empty() {
            if let Some(log) = &c.log {
                let _ = writeln!(
                    out,
                    "    last {} line(s) of {}:",
                    c.log_tail.len(),
                    log.display()
                );
            }
            for line in &c.log_tail {
                let _ = writeln!(out, "    | {line}");
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "logs: {}", report.log_dir.display());
    if let Some(junit) = junit {
        let _ = writeln!(out, "junit: {}", junit.display());
    }
    if report.interrupted {
        let _ = writeln!(
            out,
            "interrupted: the builds that were running were stopped; the rest never started"
        );
    }
    out
}

/// The JSON document (schema 1, docs/vm.md).
pub fn json(report: &RunReport, junit: Option<&Path>, exit_code: u8) -> Value {
    let mut value = serde_json::to_value(report).expect("the report serializes");
    let counts: serde_json::Map<String, Value> = summary_counts(report)
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    if let Value::Object(map) = &mut value {
        map.insert("schema".into(), json!(1));
        map.insert("summary".into(), Value::Object(counts));
        map.insert(
            "junit".into(),
            json!(junit.map(|p| p.display().to_string())),
        );
        map.insert("exitCode".into(), json!(exit_code));
    }
    value
}

/// The plan for people (`--list`): one line per check.
pub fn plan_human(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "VM checks of {} ({}):", plan.flake, plan.system);
    let width = plan.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &plan.checks {
        let features = if c.features.is_empty() {
            "-".to_string()
        } else {
            c.features.join(",")
        };
        let flaky = if c.flaky { " flaky" } else { "" };
        match &c.refusal {
            None => {
                let _ = writeln!(
                    out,
                    "  runnable  {:<width$}  features: {features}{flaky}",
                    c.name
                );
            }
            Some(reason) => {
                let _ = writeln!(out, "  refused   {:<width$}  {reason}", c.name);
            }
        }
    }
    out
}

/// The plan as JSON (`--list --format json`).
pub fn plan_json(plan: &Plan) -> Value {
    json!({
        "schema": 1,
        "flake": plan.flake,
        "system": plan.system,
        "systemFeatures": plan.builder.system_features,
        "remoteBuilders": plan.builder.remote_builders,
        "checks": plan.checks.iter().map(|c| json!({
            "name": c.name,
            "drvPath": c.drv_path,
            "flaky": c.flaky,
            "features": c.features,
            "runnable": c.refusal.is_none(),
            "refusal": c.refusal,
        })).collect::<Vec<_>>(),
    })
}
