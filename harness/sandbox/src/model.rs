//! What a sandbox run produces: per permutation, per check, a status and the evidence that
//! decided it. Runners fill these in; reporters (`report`) only read them.

use serde::Serialize;
use std::fmt;

/// The checks of the sandbox tier, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckId {
    Sshd,
    SshAudit,
    NixDaemon,
    Mounts,
    Firewall,
    Units,
    Sudo,
    Auditd,
    Execwatch,
}

impl CheckId {
    pub const ALL: [CheckId; 9] = [
        CheckId::Sshd,
        CheckId::SshAudit,
        CheckId::NixDaemon,
        CheckId::Mounts,
        CheckId::Firewall,
        CheckId::Units,
        CheckId::Sudo,
        CheckId::Auditd,
        CheckId::Execwatch,
    ];
    /// Checks run unless `--checks` says otherwise (auditd is global to the kernel: opt-in).
    pub const DEFAULT: [CheckId; 7] = [
        CheckId::Sshd,
        CheckId::SshAudit,
        CheckId::NixDaemon,
        CheckId::Mounts,
        CheckId::Firewall,
        CheckId::Units,
        CheckId::Sudo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CheckId::Sshd => "sshd",
            CheckId::SshAudit => "ssh-audit",
            CheckId::NixDaemon => "nix-daemon",
            CheckId::Mounts => "mounts",
            CheckId::Firewall => "firewall",
            CheckId::Units => "units",
            CheckId::Sudo => "sudo",
            CheckId::Auditd => "auditd",
            CheckId::Execwatch => "execwatch",
        }
    }

    pub fn parse(s: &str) -> Option<CheckId> {
        CheckId::ALL.into_iter().find(|c| c.name() == s)
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Outcome of one check on one permutation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Every assertion held, and the evidence says so.
    Pass,
    /// At least one assertion did not hold (or a control proved a probe blind).
    Fail,
    /// The check should have run but could not (missing tool, not root, locked audit...).
    /// Makes the run exit non-zero unless `--allow-skips`.
    Skipped,
    /// Nothing to prove for this permutation (the area is off, nothing is promised).
    NotApplicable,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skipped => "skipped",
            Status::NotApplicable => "not-applicable",
        }
    }
}

/// Why a check was skipped: decides the exit code when skips are not allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipKind {
    /// A program is not installed (exit 3).
    MissingTool,
    /// The machine cannot run it: not root, no network namespaces, audit locked (exit 7).
    Environment,
    /// The configuration uses something this tier does not model (exit 7).
    Unsupported,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// A command was run (or a probe made) and its decisive output read.
    Step,
    /// The rendered configuration was changed to run here (what, and why).
    Adaptation,
    /// Context that decided nothing (versions, counts, skipped sub-steps).
    Note,
}

/// One piece of evidence: what was asked, the command, the line that decided it.
#[derive(Clone, Debug, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// What this step proves (or, for an adaptation, what changed).
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The decisive output line(s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// For steps: whether the expectation held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
}

impl Evidence {
    pub fn step(
        what: impl Into<String>,
        command: impl Into<String>,
        output: impl Into<String>,
        ok: bool,
    ) -> Self {
        Evidence {
            kind: EvidenceKind::Step,
            what: what.into(),
            command: Some(command.into()).filter(|c: &String| !c.is_empty()),
            output: Some(output.into()),
            ok: Some(ok),
        }
    }
    pub fn adaptation(what: impl Into<String>) -> Self {
        Evidence {
            kind: EvidenceKind::Adaptation,
            what: what.into(),
            command: None,
            output: None,
            ok: None,
        }
    }
    pub fn note(what: impl Into<String>) -> Self {
        Evidence {
            kind: EvidenceKind::Note,
            what: what.into(),
            command: None,
            output: None,
            ok: None,
        }
    }
    pub fn failed(&self) -> bool {
        self.ok == Some(false)
    }
}

/// The result of one check on one permutation.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub check: CheckId,
    pub status: Status,
    /// One line: why it passed, what failed, why it was skipped.
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_kind: Option<SkipKind>,
    pub duration_ms: u64,
    pub evidence: Vec<Evidence>,
}

impl CheckResult {
    pub fn skipped(check: CheckId, kind: SkipKind, summary: impl Into<String>) -> Self {
        CheckResult {
            check,
            status: Status::Skipped,
            summary: summary.into(),
            skip_kind: Some(kind),
            duration_ms: 0,
            evidence: vec![],
        }
    }
    pub fn not_applicable(check: CheckId, summary: impl Into<String>) -> Self {
        CheckResult {
            check,
            status: Status::NotApplicable,
            summary: summary.into(),
            skip_kind: None,
            duration_ms: 0,
            evidence: vec![],
        }
    }
}

/// Evidence collected while a check runs; turns into a `CheckResult` at the end.
#[derive(Debug)]
pub struct Recorder {
    pub check: CheckId,
    pub evidence: Vec<Evidence>,
    failures: Vec<String>,
}

impl Recorder {
    pub fn new(check: CheckId) -> Self {
        Recorder {
            check,
            evidence: vec![],
            failures: vec![],
        }
    }
    /// Record a step; a failed one also becomes part of the summary.
    pub fn step(
        &mut self,
        what: impl Into<String>,
        command: impl Into<String>,
        output: impl Into<String>,
        ok: bool,
    ) -> bool {
        let e = Evidence::step(what, command, output, ok);
        if !ok {
            self.failures.push(e.what.clone());
        }
        self.evidence.push(e);
        ok
    }
    pub fn adapt(&mut self, what: impl Into<String>) {
        self.evidence.push(Evidence::adaptation(what));
    }
    pub fn note(&mut self, what: impl Into<String>) {
        self.evidence.push(Evidence::note(what));
    }
    /// A failure that is not tied to one command (a setup error, a blind probe).
    pub fn fail(&mut self, what: impl Into<String>, detail: impl Into<String>) {
        let what = what.into();
        self.failures.push(what.clone());
        self.evidence.push(Evidence {
            kind: EvidenceKind::Step,
            what,
            command: None,
            output: Some(detail.into()),
            ok: Some(false),
        });
    }
    pub fn has_failures(&self) -> bool {
        !self.failures.is_empty()
    }
    pub fn finish(self, pass_summary: impl Into<String>, duration_ms: u64) -> CheckResult {
        let (status, summary) = if self.failures.is_empty() {
            (Status::Pass, pass_summary.into())
        } else {
            let n = self.failures.len();
            let mut s = self
                .failures
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            if n > 3 {
                s.push_str(&format!("; and {} more", n - 3));
            }
            (Status::Fail, s)
        };
        CheckResult {
            check: self.check,
            status,
            summary,
            skip_kind: None,
            duration_ms,
            evidence: self.evidence,
        }
    }
}

/// All checks of one permutation.
#[derive(Clone, Debug, Serialize)]
pub struct PermutationReport {
    pub id: String,
    /// Where the projection came from (host name, module files, knob row).
    pub source: String,
    /// Failed NixOS assertions of the evaluated configuration (it would not build).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assertions: Vec<String>,
    pub checks: Vec<CheckResult>,
}

impl PermutationReport {
    pub fn status(&self) -> Status {
        let any = |s: Status| self.checks.iter().any(|c| c.status == s);
        if any(Status::Fail) {
            Status::Fail
        } else if any(Status::Skipped) {
            Status::Skipped
        } else if any(Status::Pass) {
            Status::Pass
        } else {
            Status::NotApplicable
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub skipped: usize,
    pub not_applicable: usize,
}

/// A finished sandbox run.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub schema: u32,
    pub run_id: String,
    /// Versions of the programs that judged (`openssh`, `ssh-audit`, `nix`, `systemd`, ...).
    pub tools: std::collections::BTreeMap<String, String>,
    pub permutations: Vec<PermutationReport>,
    pub counts: Counts,
    pub duration_ms: u64,
    pub jobs: usize,
    /// Set when Ctrl-C stopped the run; what finished is still reported.
    pub interrupted: bool,
    /// Leftovers of killed earlier runs that the startup sweep removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub swept: Vec<String>,
}

impl RunReport {
    pub fn count(permutations: &[PermutationReport]) -> Counts {
        let mut c = Counts::default();
        for r in permutations.iter().flat_map(|p| &p.checks) {
            match r.status {
                Status::Pass => c.pass += 1,
                Status::Fail => c.fail += 1,
                Status::Skipped => c.skipped += 1,
                Status::NotApplicable => c.not_applicable += 1,
            }
        }
        c
    }

    /// The kind of the first skip, which decides the exit code when skips are not allowed.
    pub fn first_skip(&self) -> Option<SkipKind> {
        let skips: Vec<SkipKind> = self
            .permutations
            .iter()
            .flat_map(|p| &p.checks)
            .filter_map(|c| c.skip_kind)
            .collect();
        if skips.contains(&SkipKind::MissingTool) {
            Some(SkipKind::MissingTool)
        } else {
            skips.first().copied()
        }
    }
}
