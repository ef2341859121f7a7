//! Reporters: read a finished `RunReport`, never run anything.

use crate::model::{EvidenceKind, RunReport, Status};
use std::fmt::Write;

/// Stable JSON (schema 1, docs/sandbox.md).
pub fn json(r: &RunReport) -> String {
    serde_json::to_string_pretty(r)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialize the report: {e}\"}}"))
}

/// Short and scannable: one line per check; evidence only for failures (or with `verbose`).
pub fn human(r: &RunReport, verbose: bool) -> String {
    let mut s = String::new();
    let tools: Vec<String> = r.tools.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        s,
        "paranoid-harness sandbox: run {} ({} jobs) — {}",
        r.run_id,
        r.jobs,
        tools.join(", ")
    );
    for p in &r.permutations {
        let _ = writeln!(
            s,
            "\n{} [{}] {}",
            p.id,
            p.status().name().to_uppercase(),
            p.source
        );
        for a in &p.assertions {
            let _ = writeln!(
                s,
                "  ! failed NixOS assertion: {}",
                a.lines().next().unwrap_or(a)
            );
        }
        for c in &p.checks {
            let _ = writeln!(
                s,
                "  {:<14} {:<14} {:>6} ms  {}",
                c.check.name(),
                c.status.name(),
                c.duration_ms,
                c.summary
            );
            if c.status == Status::Fail || verbose {
                for e in &c.evidence {
                    let mark = match (e.kind, e.ok) {
                        (EvidenceKind::Adaptation, _) => "~",
                        (EvidenceKind::Note, _) => "·",
                        (_, Some(true)) => "✓",
                        (_, Some(false)) => "✗",
                        _ => " ",
                    };
                    if !verbose && e.ok != Some(false) {
                        continue;
                    }
                    let _ = writeln!(s, "      {mark} {}", e.what);
                    if let Some(cmd) = &e.command {
                        let _ = writeln!(s, "          $ {cmd}");
                    }
                    if let Some(out) = &e.output {
                        let _ = writeln!(s, "          → {out}");
                    }
                }
            }
        }
    }
    let c = &r.counts;
    let _ = writeln!(
        s,
        "\n{} checks: {} pass, {} fail, {} skipped, {} not applicable — {:.1} s{}",
        c.pass + c.fail + c.skipped + c.not_applicable,
        c.pass,
        c.fail,
        c.skipped,
        c.not_applicable,
        r.duration_ms as f64 / 1000.0,
        if r.interrupted {
            " (INTERRUPTED: partial results)"
        } else {
            ""
        }
    );
    for w in &r.swept {
        let _ = writeln!(s, "swept leftover of a killed run: {w}");
    }
    s
}
