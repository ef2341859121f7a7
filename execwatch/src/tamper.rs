//! Tampering is an alert too: audit switched off, the exec rules removed, records lost by the
//! kernel or a backlog about to overflow, seen two ways: the CONFIG_CHANGE records the kernel
//! sends when someone changes audit (immediate), and a periodic AUDIT_GET / AUDIT_LIST_RULES
//! poll (catches what happened while no record could reach us, and lost-record counters).

use crate::alert::{Alert, Kind, PRIORITY_ALERT, PRIORITY_NOTICE, PRIORITY_WARNING};
use crate::netlink::{Rule, Status};

/// What the poll has seen so far; alerts fire on transitions, not on every poll.
#[derive(Default)]
pub struct Poll {
    keys: Vec<String>,
    enabled: Option<u32>,
    lost: Option<u32>,
    backlog_high: bool,
    exec_rules: Option<usize>,
}

fn tamper(priority: u8, finding: &str, message: String) -> Alert {
    Alert::new(Kind::Tamper, priority, message).with("finding", finding)
}

impl Poll {
    pub fn new(keys: Vec<String>) -> Poll {
        Poll { keys, ..Default::default() }
    }

    fn ours(&self, r: &Rule) -> bool {
        r.audits_exec() && (self.keys.is_empty() || r.keys.iter().any(|k| self.keys.contains(k)))
    }

    pub fn status(&mut self, s: &Status) -> Vec<Alert> {
        let mut out = vec![];
        let was = self.enabled.replace(s.enabled);
        if s.enabled == 0 && was != Some(0) {
            out.push(
                tamper(PRIORITY_ALERT, "audit-disabled", "audit is switched off (enabled 0): no exec is recorded, foreign code runs unseen".into())
                    .with("enabled", s.enabled),
            );
        } else if s.enabled != 0 && was == Some(0) {
            out.push(tamper(PRIORITY_NOTICE, "audit-enabled", format!("audit is on again (enabled {})", s.enabled)));
        }
        match self.lost.replace(s.lost) {
            None if s.lost > 0 => out.push(
                tamper(PRIORITY_WARNING, "records-lost", format!("the kernel lost {} audit records before the watcher started", s.lost))
                    .with("lost_total", s.lost),
            ),
            Some(prev) if s.lost > prev => out.push(
                tamper(
                    PRIORITY_ALERT,
                    "records-lost",
                    format!(
                        "the kernel lost {} audit records (backlog limit {}, {} lost in total): execs in that gap are unseen",
                        s.lost - prev,
                        s.backlog_limit,
                        s.lost
                    ),
                )
                .with("lost", s.lost - prev)
                .with("lost_total", s.lost)
                .with("backlog_limit", s.backlog_limit),
            ),
            _ => {}
        }
        if s.backlog_limit > 0 {
            let high = s.backlog as u64 * 10 >= s.backlog_limit as u64 * 9;
            let low = s.backlog as u64 * 2 < s.backlog_limit as u64;
            if high && !self.backlog_high {
                self.backlog_high = true;
                out.push(
                    tamper(
                        PRIORITY_ALERT,
                        "backlog-overflow",
                        format!("the audit backlog is at {} of {}: records are about to be lost", s.backlog, s.backlog_limit),
                    )
                    .with("backlog", s.backlog)
                    .with("backlog_limit", s.backlog_limit),
                );
            } else if low {
                self.backlog_high = false;
            }
        }
        out
    }

    pub fn rules(&mut self, rules: &[Rule]) -> Vec<Alert> {
        let n = rules.iter().filter(|r| self.ours(r)).count();
        let was = self.exec_rules.replace(n);
        let keys = if self.keys.is_empty() { "any key".to_string() } else { self.keys.join(", ") };
        match was {
            _ if n == 0 && was != Some(0) => vec![tamper(
                PRIORITY_ALERT,
                "rules-missing",
                format!("no execve/execveat audit rule with {keys} is loaded: program executions are not recorded"),
            )
            .with("exec_rules", n as u64)],
            Some(prev) if n < prev => vec![tamper(
                PRIORITY_ALERT,
                "rules-removed",
                format!("execve audit rules with {keys} were removed: {n} left of {prev}"),
            )
            .with("exec_rules", n as u64)
            .with("exec_rules_before", prev as u64)],
            Some(0) if n > 0 => vec![tamper(PRIORITY_NOTICE, "rules-loaded", format!("{n} execve audit rules with {keys} are loaded again"))],
            _ => vec![],
        }
    }
}

/// A CONFIG_CHANGE record: someone changed audit. Switching it off, or removing one of our
/// rules (or trying to, refused), is an alert; other changes are notices.
pub fn config_change(keys: &[String], id: &str, fields: &[(String, String)]) -> Option<Alert> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let who = format!("login uid {}, session {}", get("auid").unwrap_or("?"), get("ses").unwrap_or("?"));
    let failed = get("res") == Some("0");
    let ours = |key: Option<&str>| {
        keys.is_empty() || key.map(|k| k.split('\u{1}').any(|k| keys.iter().any(|w| w == k))).unwrap_or(false)
    };
    let base = |priority: u8, finding: &str, message: String| {
        let mut a = tamper(priority, finding, message).with("audit_event", id);
        for (k, v) in fields {
            a = a.with(&format!("record_{k}"), v.as_str());
        }
        a
    };
    if get("audit_enabled") == Some("0") {
        let m = if failed {
            format!("an attempt to switch audit off was refused ({who})")
        } else {
            format!("audit was switched off ({who}): no exec is recorded from now on")
        };
        return Some(base(PRIORITY_ALERT, "audit-disabled", m));
    }
    if get("op") == Some("remove_rule") && ours(get("key")) {
        let key = get("key").unwrap_or("(none)");
        let m = if failed {
            format!("an attempt to remove the audit rule with key {key} was refused ({who})")
        } else {
            format!("an audit rule with key {key} was removed ({who})")
        };
        return Some(base(PRIORITY_ALERT, "rule-removed", m));
    }
    let desc: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Some(base(PRIORITY_NOTICE, "config-change", format!("audit configuration changed: {}", desc.join(" "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(enabled: u32, lost: u32, backlog: u32) -> Status {
        Status { enabled, lost, backlog, backlog_limit: 100, ..Default::default() }
    }

    #[test]
    fn the_poll_alerts_on_transitions_only() {
        let mut p = Poll::new(vec!["exec".into()]);
        assert!(p.status(&st(1, 0, 0)).is_empty());
        let a = p.status(&st(0, 0, 0));
        assert_eq!(a[0].fields["finding"], "audit-disabled");
        assert!(p.status(&st(0, 0, 0)).is_empty(), "no repeat");
        let a = p.status(&st(1, 7, 95));
        let findings: Vec<_> = a.iter().map(|a| a.fields["finding"].as_str().unwrap().to_string()).collect();
        assert_eq!(findings, vec!["audit-enabled", "records-lost", "backlog-overflow"]);
        assert_eq!(a[1].fields["lost"], 7);
        assert!(p.status(&st(1, 7, 95)).is_empty());
    }

    #[test]
    fn disabling_and_rule_removal_records_are_alerts() {
        let keys = vec!["exec".to_string()];
        let f = |s: &str| s.split(' ').map(|kv| { let (k, v) = kv.split_once('=').unwrap(); (k.to_string(), v.to_string()) }).collect::<Vec<_>>();
        let a = config_change(&keys, "1:2", &f("op=set audit_enabled=0 old=1 auid=1000 ses=3 res=1")).unwrap();
        assert_eq!((a.priority, a.fields["finding"].as_str()), (PRIORITY_ALERT, Some("audit-disabled")));
        let a = config_change(&keys, "1:2", &f("auid=1000 ses=3 op=remove_rule key=exec list=4 res=1")).unwrap();
        assert_eq!(a.fields["finding"], "rule-removed");
        let a = config_change(&keys, "1:2", &f("auid=1000 ses=3 op=remove_rule key=other list=4 res=1")).unwrap();
        assert_eq!(a.priority, PRIORITY_NOTICE);
    }
}
