//! Audit: does a program run from outside the store still leave its SYSCALL (with `exe=`) and
//! EXECVE records, judged on the whole rule file in load order with the kernel's `task`,
//! `exit` (first match) and `exclude` semantics (lib/posture/audit.nix), from /tmp and from
//! every other place a foreign program runs from (`paths`); and do they reach a log: no rate
//! limit (`-r`) dropping them, auditd running to take them.

use serde_json::{json, Value};

use super::{force, v, Posture, Proj, Violation};
use crate::effective::{Audit, Effective};

fn rule_text(line: usize, text: &str, origin: &crate::effective::Origin) -> String {
    format!("`{text}` (line {line}, from {})", origin.describe())
}

fn rule(a: &Audit, line: usize) -> String {
    match a.rule(line) {
        Some(r) => format!("`{}` (line {line}, from {})", r.text, r.origin.describe()),
        None => format!("line {line}"),
    }
}

/// The execve rules paranoid.audit adds (modules/audit.nix), for a fix that must put them back.
fn paranoid_rules(p: &Posture) -> Vec<String> {
    let key = p
        .get("audit.key")
        .map(crate::plan::plain)
        .unwrap_or_else(|| "exec".into());
    ["b64", "b32"]
        .iter()
        .map(|arch| format!("-a always,exit -F arch={arch} -S execve -S execveat -k {key}"))
        .collect()
}

pub(super) fn check(p: &Posture, proj: &Proj, eff: &Effective) -> Vec<Violation> {
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
    if let Some(k) = a.kernel_disabled.as_ref().filter(|_| execve_wanted) {
        let files = if k.files.is_empty() {
            String::new()
        } else {
            format!(" (in {})", k.files.join(", "))
        };
        let kept: Vec<Value> = proj
            .opt("boot.kernelParams")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter(|p| !matches!(p.as_str(), Some("audit=0" | "audit=off")))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        out.push(
            v(
                "audit.execve-rules",
                format!(
                    "with {}, `{}` on the kernel command line, from boot.kernelParams{files}, disables the audit subsystem until the next reboot: no rule records anything, execve included",
                    p.show("audit.enable"),
                    k.param
                ),
                p.fix("audit", "audit.enable", format!("remove `{}` from boot.kernelParams{files}", k.param)),
            )
            .applying(vec![force("boot.kernelParams", Value::Array(kept))]),
        );
        return out;
    }
    if execve_wanted && !a.execve_audited {
        let missing: Vec<_> = a
            .scenarios
            .iter()
            .filter(|s| !(s.syscall_record && s.execve_record))
            .collect();
        let missing_cases = missing.len();
        let lost_paths: Vec<_> = a.paths.iter().filter(|p| !p.recorded).collect();
        let mut why = vec![];
        let mut path_why = vec![];
        let mut culprits = std::collections::BTreeSet::new();
        // Why an exec goes unrecorded: the rules dropping its records, or the rule deciding it;
        // each named rule is a culprit the fix removes.
        let reason_of = |dropped_by: &[usize], decided_by: Option<usize>, culprits: &mut std::collections::BTreeSet<usize>| {
            if !dropped_by.is_empty() {
                culprits.extend(dropped_by.iter().copied());
                format!("records dropped by {}", dropped_by.iter().map(|l| rule(a, *l)).collect::<Vec<_>>().join(", "))
            } else if let Some(l) = decided_by {
                culprits.insert(l);
                format!("decided by {}", rule(a, l))
            } else {
                "no rule matches".to_string()
            }
        };
        for s in &lost_paths {
            let reason = reason_of(&s.dropped_by, s.decided_by, &mut culprits);
            path_why.push(format!("{} run by {}: {reason}", s.exe, s.actor));
        }
        for s in &missing {
            let reason = reason_of(&s.dropped_by, s.decided_by, &mut culprits);
            why.push(format!(
                "{}: {}{}",
                s.id,
                if s.syscall_record {
                    "SYSCALL kept, EXECVE lost"
                } else {
                    "no SYSCALL record"
                },
                format!(" ({reason})")
            ));
        }
        // The rule lines a user added that suppress records (never, exclude, task; and `-d`
        // lines, whose victims are in no list any more); removing them, and putting back
        // paranoid's execve rules where a definition replaced them, is the fix.
        let from_option = |o: &crate::effective::Origin| o.option == "security.audit.rules";
        let mut user_rules: Vec<(String, Vec<String>)> = culprits
            .iter()
            .filter_map(|l| a.rule(*l))
            .filter(|r| {
                r.action.as_deref() == Some("never")
                    || r.list.as_deref() == Some("exclude")
                    || r.list.as_deref() == Some("task")
            })
            .map(|r| (r.text.clone(), r.origin.files.clone()))
            .collect();
        user_rules.extend(
            a.deletions
                .iter()
                .filter(|d| from_option(&d.origin))
                .map(|d| (d.text.clone(), d.origin.files.clone())),
        );
        let current: Vec<String> = proj
            .opt("security.audit.rules")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(|r| r.trim().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let missing: Vec<String> = paranoid_rules(p)
            .into_iter()
            .filter(|r| !current.contains(r))
            .collect();
        let files = |fs: &[String]| {
            if fs.is_empty() {
                String::new()
            } else {
                format!(" (in {})", fs.join(", "))
            }
        };
        let mut fixes = vec![];
        if !user_rules.is_empty() {
            fixes.push(format!(
                "remove {} from security.audit.rules{}",
                user_rules
                    .iter()
                    .map(|(r, _)| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                files(&user_rules[0].1)
            ));
        }
        if !missing.is_empty() {
            fixes.push(format!(
                "remove the definition that replaces security.audit.rules{} (paranoid's {} are gone: add rules with lib.mkAfter, never replace paranoid's)",
                files(&a.rules.iter().chain(&a.deletions).find(|r| from_option(&r.origin)).map(|r| r.origin.files.clone()).unwrap_or_default()),
                missing.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        let fix = if fixes.is_empty() {
            "remove the definition that overrides security.audit.rules (add rules with lib.mkAfter, never replace paranoid's)".to_string()
        } else {
            fixes.join("; and ")
        };
        let apply = if fixes.is_empty() {
            vec![]
        } else {
            let kept = current
                .iter()
                .filter(|r| !user_rules.iter().any(|(u, _)| u.trim() == r.as_str()))
                .cloned()
                .chain(missing.iter().cloned())
                .map(Value::String)
                .collect();
            vec![force("security.audit.rules", Value::Array(kept))]
        };
        let mut lost = vec![];
        if !why.is_empty() {
            lost.push(format!(
                "a program run from /tmp is not fully recorded in {} of {} cases: {}",
                missing_cases,
                a.scenarios.len(),
                why.join("; ")
            ));
        }
        if !path_why.is_empty() {
            lost.push(format!(
                "a program run from {} of the {} places a foreign program can run from is not recorded: {}",
                lost_paths.len(),
                a.paths.len(),
                path_why.join("; ")
            ));
        }
        out.push(
            v(
                "audit.execve-rules",
                format!(
                    "with {} and {}, {}",
                    p.show("audit.enable"),
                    p.show("audit.execve"),
                    lost.join("; and ")
                ),
                p.fix("audit", "audit.enable", fix),
            )
            .applying(apply),
        );
    }
    if let Some(r) = a.rate_limit.as_ref().filter(|_| execve_wanted) {
        let files = if r.origin.files.is_empty() {
            String::new()
        } else {
            format!(" (in {})", r.origin.files.join(", "))
        };
        let (fix, apply) = if r.origin.option == "security.audit.rateLimit" {
            (
                format!("remove the definition of security.audit.rateLimit{files} (0, the default, is no limit; paranoid.audit.backlogLimit absorbs bursts)"),
                vec![force("security.audit.rateLimit", json!(0))],
            )
        } else {
            let kept: Vec<Value> = proj
                .opt("security.audit.rules")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter(|x| x.as_str().map(str::trim) != Some(r.text.as_str()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            (
                format!("remove `{}` from {}{files}", r.text, r.origin.option),
                vec![force("security.audit.rules", Value::Array(kept))],
            )
        };
        out.push(
            v(
                "audit.execve-rules",
                format!(
                    "with {} and {}, {} makes the kernel drop every audit record over {} a second (kernel/audit.c audit_rate_check: \"rate limit exceeded\"): a burst of program starts is not recorded",
                    p.show("audit.enable"),
                    p.show("audit.execve"),
                    rule_text(r.line, &r.text, &r.origin),
                    r.value
                ),
                p.fix("audit", "audit.enable", fix),
            )
            .applying(apply),
        );
    }
    if execve_wanted && !a.auditd {
        let files = if a.auditd_files.is_empty() {
            String::new()
        } else {
            format!(" (in {})", a.auditd_files.join(", "))
        };
        out.push(
            v(
                "audit.execve-rules",
                format!(
                    "with {} and {}, security.auditd.enable = false: no daemon takes the records, so the kernel hands them to the kernel log through printk's rate limit (kernel/audit.c kauditd_printk_skb: \"callbacks suppressed\"), which drops all but a few every 5 seconds, and nothing writes /var/log/audit: a burst of program starts is not recorded",
                    p.show("audit.enable"),
                    p.show("audit.execve")
                ),
                p.fix("audit", "audit.enable", format!("remove the definition of security.auditd.enable = false{files}")),
            )
            .applying(vec![force("security.auditd.enable", json!(true))]),
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
                    .chain(a.paths.iter().filter(|s| s.uncertain).filter_map(|s| s.decided_by))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .map(|l| rule(a, l))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            {
                let origins: std::collections::BTreeSet<String> = a
                    .scenarios
                    .iter()
                    .filter(|s| s.uncertain)
                    .filter_map(|s| s.decided_by)
                    .chain(a.paths.iter().filter(|s| s.uncertain).filter_map(|s| s.decided_by))
                    .filter_map(|l| a.rule(l))
                    .map(|r| r.origin.describe())
                    .collect();
                format!(
                    "narrow the `never` rule with fields that can be judged (arch, uid, auid, exe, dir, path, success), or remove it from {}",
                    origins.into_iter().collect::<Vec<_>>().join(", ")
                )
            },
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
                if p.flag("audit.immutable") {
                    json!("lock")
                } else {
                    json!(true)
                },
            )]),
        );
    }
    out
}
