//! What the watcher says: one `Alert` per foreign exec, flood summary, tamper finding,
//! heartbeat or life-cycle event, with stable field names (journald `EXECWATCH_*`, JSON
//! lower-case) documented in docs/execwatch.md.

use crate::decide::{result_text, Verdict};
use crate::event::ExecEvent;
use serde::Serialize;
use std::collections::BTreeMap;

/// Syslog priorities as journald reads them.
pub const PRIORITY_ALERT: u8 = 1;
pub const PRIORITY_WARNING: u8 = 4;
pub const PRIORITY_NOTICE: u8 = 5;
pub const PRIORITY_INFO: u8 = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Code from outside /nix/store and the allow-list ran, or was refused.
    ForeignExec,
    /// More foreign execs than the rate limit lets through one by one: exact counts.
    Summary,
    /// Audit switched off, exec rules removed, records lost, the watcher stopped.
    Tamper,
    /// "Still watching": its absence on the log host is the alarm.
    Heartbeat,
    /// Started, configuration.
    Lifecycle,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::ForeignExec => "foreign-exec",
            Kind::Summary => "summary",
            Kind::Tamper => "tamper",
            Kind::Heartbeat => "heartbeat",
            Kind::Lifecycle => "lifecycle",
        }
    }

    /// journald MESSAGE_ID, so a log host can select each kind (`journalctl MESSAGE_ID=…`).
    pub fn message_id(self) -> &'static str {
        match self {
            Kind::ForeignExec => "bd92ce3a861448b3bece766c0f9f2d0a",
            Kind::Summary => "51973b2a6c8c41bfa70b94d4d0cdf537",
            Kind::Tamper => "c3739fab896548c0ab7b2d2665641612",
            Kind::Heartbeat => "4af8ae8523d84064aa9785b868614ae5",
            Kind::Lifecycle => "a89464c6688e44138e6a56032c1bf20f",
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Alert {
    pub kind: Kind,
    pub priority: u8,
    pub message: String,
    /// Host name, so an alert stands alone off the box.
    pub host: String,
    /// Seconds since the epoch when the watcher decided.
    pub time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecFields>,
    /// Kind-specific fields (tamper finding, summary counts, counters).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// The evidence of one foreign exec.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ExecFields {
    pub reason: &'static str,
    /// The foreign file.
    pub target: String,
    /// The executable the kernel ran (for a script, its interpreter; for a refused exec, the
    /// program that tried).
    pub exe: Option<String>,
    pub argv: Vec<String>,
    pub pid: Option<u32>,
    pub ppid: Option<u32>,
    pub parent_exe: Option<String>,
    pub uid: Option<u32>,
    pub euid: Option<u32>,
    /// Login uid: who logged in, whatever they became since (unset: 4294967295).
    pub auid: Option<u32>,
    pub session: Option<u32>,
    pub tty: Option<String>,
    pub cwd: Option<String>,
    /// `success`, or the errno of a refused exec (`EACCES`).
    pub result: String,
    pub comm: Option<String>,
    pub audit_key: Option<String>,
    /// The audit event id (`seconds.millis:serial`): `ausearch -a <serial>` finds the records.
    pub audit_event: String,
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

const UNSET: u32 = u32::MAX;

fn id_text(v: Option<u32>) -> String {
    match v {
        Some(UNSET) => "unset".into(),
        Some(n) => n.to_string(),
        None => "?".into(),
    }
}

impl Alert {
    pub fn new(kind: Kind, priority: u8, message: impl Into<String>) -> Alert {
        Alert {
            kind,
            priority,
            message: message.into(),
            host: hostname(),
            time: now(),
            exec: None,
            fields: BTreeMap::new(),
        }
    }

    pub fn with(mut self, k: &str, v: impl Into<serde_json::Value>) -> Alert {
        self.fields.insert(k.to_string(), v.into());
        self
    }

    pub fn foreign(e: &ExecEvent, v: &Verdict, parent_exe: Option<String>) -> Alert {
        let what = match v.reason {
            crate::decide::Reason::Executable => "ran",
            crate::decide::Reason::Script => "ran the script",
            crate::decide::Reason::InterpreterArgument => "ran a script through an interpreter:",
            crate::decide::Reason::LoaderArgument => "ran a program through the dynamic loader:",
            crate::decide::Reason::RefusedExec => "tried to run (refused by the kernel)",
        };
        let message = format!(
            "foreign code: uid {} (login uid {}) {} {} from outside /nix/store (pid {}, argv {:?})",
            id_text(e.uid),
            id_text(e.auid),
            what,
            v.target,
            id_text(e.pid),
            e.argv,
        );
        let mut a = Alert::new(Kind::ForeignExec, PRIORITY_ALERT, message);
        a.exec = Some(ExecFields {
            reason: v.reason.name(),
            target: v.target.clone(),
            exe: e.exe.clone(),
            argv: e.argv.clone(),
            pid: e.pid,
            ppid: e.ppid,
            parent_exe,
            uid: e.uid,
            euid: e.euid,
            auid: e.auid,
            session: e.ses,
            tty: e.tty.clone(),
            cwd: e.cwd.clone(),
            result: result_text(e),
            comm: e.comm.clone(),
            audit_key: e.key.clone(),
            audit_event: e.id.clone(),
        });
        a
    }

    /// One JSON object (the webhook body, the JSON-lines output, the command's stdin).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// journald native-protocol fields, in order. Values are text; journald takes any bytes.
    pub fn journal_fields(&self) -> Vec<(String, String)> {
        let mut f = vec![
            ("MESSAGE".to_string(), self.message.clone()),
            ("PRIORITY".to_string(), self.priority.to_string()),
            ("SYSLOG_IDENTIFIER".to_string(), "paranoid-execwatch".to_string()),
            ("MESSAGE_ID".to_string(), self.kind.message_id().to_string()),
            ("EXECWATCH_KIND".to_string(), self.kind.name().to_string()),
        ];
        if let Some(x) = &self.exec {
            let opt = |v: &Option<String>| v.clone().unwrap_or_default();
            let num = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
            f.extend([
                ("EXECWATCH_REASON".to_string(), x.reason.to_string()),
                ("EXECWATCH_TARGET".to_string(), x.target.clone()),
                ("EXECWATCH_EXE".to_string(), opt(&x.exe)),
                ("EXECWATCH_ARGV".to_string(), serde_json::to_string(&x.argv).unwrap_or_default()),
                ("EXECWATCH_PID".to_string(), num(x.pid)),
                ("EXECWATCH_PPID".to_string(), num(x.ppid)),
                ("EXECWATCH_PARENT_EXE".to_string(), opt(&x.parent_exe)),
                ("EXECWATCH_UID".to_string(), num(x.uid)),
                ("EXECWATCH_EUID".to_string(), num(x.euid)),
                ("EXECWATCH_AUID".to_string(), num(x.auid)),
                ("EXECWATCH_SESSION".to_string(), num(x.session)),
                ("EXECWATCH_TTY".to_string(), opt(&x.tty)),
                ("EXECWATCH_CWD".to_string(), opt(&x.cwd)),
                ("EXECWATCH_RESULT".to_string(), x.result.clone()),
                ("EXECWATCH_COMM".to_string(), opt(&x.comm)),
                ("EXECWATCH_AUDIT_KEY".to_string(), opt(&x.audit_key)),
                ("EXECWATCH_AUDIT_EVENT".to_string(), x.audit_event.clone()),
            ]);
        }
        for (k, v) in &self.fields {
            let name = format!(
                "EXECWATCH_{}",
                k.to_ascii_uppercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            );
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            f.push((name, text));
        }
        f
    }
}

/// journald's native protocol: `KEY=value\n`, or for a value with a newline
/// `KEY\n<64-bit little-endian length><value>\n`.
pub fn journal_datagram(fields: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    for (k, v) in fields {
        out.extend_from_slice(k.as_bytes());
        if v.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
            out.extend_from_slice(v.as_bytes());
        } else {
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// The inverse of `journal_datagram`, for tests and for anyone reading a captured socket.
pub fn parse_journal_datagram(mut b: &[u8]) -> Vec<(String, String)> {
    let mut out = vec![];
    while !b.is_empty() {
        let nl = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
        let line = &b[..nl];
        if let Some(eq) = line.iter().position(|&c| c == b'=') {
            out.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            b = &b[(nl + 1).min(b.len())..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &b[(nl + 1).min(b.len())..];
            if rest.len() < 8 {
                break;
            }
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let v = &rest[8..(8 + len).min(rest.len())];
            out.push((key, String::from_utf8_lossy(v).into_owned()));
            b = &rest[(8 + len + 1).min(rest.len())..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_datagrams_round_trip_including_newlines() {
        let f = vec![
            ("MESSAGE".to_string(), "two\nlines".to_string()),
            ("PRIORITY".to_string(), "1".to_string()),
            ("EXECWATCH_ARGV".to_string(), "[\"a=b\"]".to_string()),
        ];
        assert_eq!(parse_journal_datagram(&journal_datagram(&f)), f);
    }

    #[test]
    fn a_foreign_exec_alert_carries_every_field() {
        let e = ExecEvent {
            id: "1.000:5".into(),
            success: true,
            exe: Some("/tmp/x".into()),
            argv: vec!["/tmp/x".into(), "a b".into()],
            pid: Some(10),
            ppid: Some(9),
            uid: Some(1001),
            auid: Some(4242),
            ses: Some(3),
            cwd: Some("/tmp".into()),
            ..Default::default()
        };
        let v = Verdict { reason: crate::decide::Reason::Executable, target: "/tmp/x".into() };
        let a = Alert::foreign(&e, &v, Some("/nix/store/b/bin/bash".into()));
        let f: BTreeMap<_, _> = a.journal_fields().into_iter().collect();
        assert_eq!(f["PRIORITY"], "1");
        assert_eq!(f["EXECWATCH_EXE"], "/tmp/x");
        assert_eq!(f["EXECWATCH_ARGV"], r#"["/tmp/x","a b"]"#);
        assert_eq!(f["EXECWATCH_AUID"], "4242");
        assert_eq!(f["EXECWATCH_PARENT_EXE"], "/nix/store/b/bin/bash");
        assert_eq!(f["EXECWATCH_RESULT"], "success");
        assert!(a.message.contains("login uid 4242"), "{}", a.message);
        let j: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(j["exec"]["auid"], 4242);
        assert_eq!(j["kind"], "foreign-exec");
    }
}
