//! Rate limiting that keeps the evidence: within a window, the first `burst` foreign execs are
//! alerted one by one; every further one is counted under (reason, target, uid) and the
//! window's counts are sent as one summary. Nothing is dropped: alerts + summary counts equal
//! the events seen, exactly.

use crate::alert::{Alert, Kind, PRIORITY_ALERT};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

type Group = (String, String, Option<u32>);

pub struct Limiter {
    burst: u64,
    window: Duration,
    start: Option<Instant>,
    sent: u64,
    suppressed: BTreeMap<Group, u64>,
    /// Lifetime totals, for the heartbeat.
    pub total_alerted: u64,
    pub total_summarised: u64,
}

impl Limiter {
    pub fn new(burst: u64, window: Duration) -> Limiter {
        Limiter {
            burst,
            window,
            start: None,
            sent: 0,
            suppressed: BTreeMap::new(),
            total_alerted: 0,
            total_summarised: 0,
        }
    }

    /// `true`: alert this one individually; `false`: it was counted for the summary.
    pub fn admit(&mut self, now: Instant, reason: &str, target: &str, uid: Option<u32>) -> bool {
        let start = *self.start.get_or_insert(now);
        debug_assert!(now >= start);
        if self.sent < self.burst {
            self.sent += 1;
            self.total_alerted += 1;
            return true;
        }
        *self
            .suppressed
            .entry((reason.to_string(), target.to_string(), uid))
            .or_insert(0) += 1;
        self.total_summarised += 1;
        false
    }

    /// Close the window if it is over (or `force`): the summary of what was counted, if any.
    pub fn roll(&mut self, now: Instant, force: bool) -> Option<Alert> {
        let start = self.start?;
        let elapsed = now.saturating_duration_since(start);
        if !force && elapsed < self.window {
            return None;
        }
        let sent = self.sent;
        let groups = std::mem::take(&mut self.suppressed);
        self.start = None;
        self.sent = 0;
        if groups.is_empty() {
            return None;
        }
        let total: u64 = groups.values().sum();
        let mut lines: Vec<(&Group, &u64)> = groups.iter().collect();
        lines.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = lines
            .iter()
            .take(10)
            .map(|((reason, target, uid), n)| {
                format!("{target} x{n} (uid {}, {reason})", uid.map(|u| u.to_string()).unwrap_or("?".into()))
            })
            .collect();
        let more = if lines.len() > 10 { format!(" and {} more groups", lines.len() - 10) } else { String::new() };
        let message = format!(
            "foreign code flood: {total} more foreign executions in {:.1} s beyond the {} alerted one by one (counted, not dropped): {}{more}",
            elapsed.as_secs_f64(),
            sent,
            shown.join("; ")
        );
        let json_groups: Vec<serde_json::Value> = lines
            .iter()
            .map(|((reason, target, uid), n)| {
                serde_json::json!({ "reason": reason, "target": target, "uid": uid, "count": n })
            })
            .collect();
        Some(
            Alert::new(Kind::Summary, PRIORITY_ALERT, message)
                .with("suppressed", total)
                .with("alerted_individually", sent)
                .with("window_seconds", elapsed.as_secs_f64())
                .with("groups", serde_json::Value::Array(json_groups)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_counted_exactly_and_summarised_per_window() {
        let t0 = Instant::now();
        let mut l = Limiter::new(3, Duration::from_secs(10));
        let mut individual = 0;
        for i in 0..1000u32 {
            if l.admit(t0, "executable", if i % 2 == 0 { "/tmp/a" } else { "/tmp/b" }, Some(1001)) {
                individual += 1;
            }
        }
        assert_eq!(individual, 3);
        assert!(l.roll(t0 + Duration::from_secs(5), false).is_none(), "window not over");
        let s = l.roll(t0 + Duration::from_secs(10), false).expect("summary");
        assert_eq!(s.fields["suppressed"], 997);
        let groups = s.fields["groups"].as_array().unwrap();
        let sum: u64 = groups.iter().map(|g| g["count"].as_u64().unwrap()).sum();
        assert_eq!(sum, 997);
        assert!(s.message.contains("/tmp/a x499") || s.message.contains("/tmp/b x499"), "{}", s.message);
        // A new window lets alerts through again.
        assert!(l.admit(t0 + Duration::from_secs(11), "executable", "/tmp/a", None));
        assert!(l.roll(t0 + Duration::from_secs(30), false).is_none(), "nothing suppressed");
    }
}
