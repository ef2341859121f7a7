//! Audit: does a program run from outside the store still leave its SYSCALL (with `exe=`) and
//! EXECVE records, judged on the whole rule file in load order with the kernel's `task`,
//! `exit` (first match) and `exclude` semantics (lib/posture/audit.nix).

use serde_json::{json, Value};

use super::{force, v, Posture, Violation};
use crate::effective::{Audit, Effective};

fn rule(a: &Audit, line: usize) -> String {
    match a.rule(line) {
        Some(r) => format!(
            "`{}` (line {line}, from {})",
            r.text,
            r.origin.describe()
        ),
        None => format!("line {line}"),
    }
}

pub(super) fn check(p: &Posture, eff: &Effective) -> Vec<Violation> {
    if !p.area_on("audit") {
        return vec![];
    }
    let execve_wanted = p
        .get("audit.execve")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let mut out = vec![];
    let Some(a) = &eff.audit else {
        out.push(
            v(
                "audit.execve-rules",
                format!(
                    "with {}, security.audit.enable = false: the kernel loads no rules at all",
                    p.show("audit.enable")
                ),
                p.fix(
                    "audit",
                    "audit.enable",
                    "remove the definition of security.audit.enable = false",
                ),
            )
            .applying(vec![force("security.audit.enable", json!(true))]),
        );
        return out;
    };
    if execve_wanted && !a.execve_audited {
        let missing: Vec<_> = a
            .scenarios
            .iter()
            .filter(|s| !(s.syscall_record && s.execve_record))
            .collect();
        let mut why = vec![];
        let mut culprits = std::collections::BTreeSet::new();
        for s in &missing {
            let reason = if !s.dropped_by.is_empty() {
                culprits.extend(s.dropped_by.iter().copied());
                format!(
                    "records dropped by {}",
                    s.dropped_by.iter().map(|l| rule(a, *l)).collect::<Vec<_>>().join(", ")
                )
            } else if let Some(l) = s.decided_by {
                culprits.insert(l);
                format!("decided by {}", rule(a, l))
            } else {
                "no rule matches".to_string()
            };
            why.push(format!(
                "{}: {}{}",
                s.id,
                if s.syscall_record { "SYSCALL kept, EXECVE lost" } else { "no SYSCALL record" },
                format!(" ({reason})")
            ));
        }
        // The rule lines a user added that suppress records; removing them (and keeping
        // paranoid's) is the fix when they came from security.audit.rules.
        let user_rules: Vec<String> = culprits
            .iter()
            .filter_map(|l| a.rule(*l))
            .filter(|r| r.action.as_deref() == Some("never") || r.list.as_deref() == Some("exclude") || r.list.as_deref() == Some("task"))
            .map(|r| r.text.clone())
            .collect();
        let fix = if user_rules.is_empty() {
            "remove the definition that overrides security.audit.rules (add rules with lib.mkAfter, never replace paranoid's)".to_string()
        } else {
            format!(
                "remove {} from security.audit.rules{}",
                user_rules.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", "),
                a.rules
                    .iter()
                    .find(|r| user_rules.contains(&r.text))
                    .map(|r| if r.origin.files.is_empty() { String::new() } else { format!(" (in {})", r.origin.files.join(", ")) })
                    .unwrap_or_default()
            )
        };
        let kept: Vec<Value> = a
            .rules
            .iter()
            .filter(|r| r.origin.option == "security.audit.rules" && !user_rules.contains(&r.text))
            .map(|r| json!(r.text))
            .collect();
        let apply = if user_rules.is_empty() {
            vec![]
        } else {
            vec![force("security.audit.rules", Value::Array(kept))]
        };
        out.push(
            v(
                "audit.execve-rules",
                format!(
                    "with {} and {}, a program run from /tmp is not fully recorded in {} of {} cases: {}",
                    p.show("audit.enable"),
                    p.show("audit.execve"),
                    missing.len(),
                    a.scenarios.len(),
                    why.join("; ")
                ),
                p.fix("audit", "audit.enable", fix),
            )
            .applying(apply),
        );
    }
    if !a.judged {
        out.push(v(
            "audit.judged",
            format!(
                "with {}, a rule that may suppress execve records uses a field this model cannot evaluate: {}",
                p.show("audit.enable"),
                a.scenarios
                    .iter()
                    .filter(|s| s.uncertain)
                    .filter_map(|s| s.decided_by)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .map(|l| rule(a, l))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "narrow the `never` rule with fields that can be judged (arch, uid, auid, exe, dir, path, success), or remove it",
        ));
    }
    if a.locked != p.flag("audit.immutable") {
        out.push(
            v(
                "audit.immutable",
                format!(
                    "with {}, the rule file ends with `-e {}`",
                    p.show("audit.immutable"),
                    if a.locked { "2" } else { "1" }
                ),
                p.fix(
                    "audit",
                    "audit.enable",
                    "remove the definition that overrides security.audit.enable",
                ),
            )
            .applying(vec![force(
                "security.audit.enable",
                if p.flag("audit.immutable") { json!("lock") } else { json!(true) },
            )]),
        );
    }
    out
}
