//! Talking to Nix: evaluation (`nix eval --json`), the local builder's configuration, and the
//! error classification the exit codes depend on. Builds themselves are in [`crate::run`].

use std::io::ErrorKind;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::{Result, VmError};

/// Settings for the evaluations that discover checks: a flake input that cannot be fetched
/// must fail in seconds, not after five attempts with back-off (docs/vm.md).
const EVAL_OPTIONS: &[&str] = &[
    "--option",
    "download-attempts",
    "2",
    "--option",
    "connect-timeout",
    "20",
];

/// Phrases in Nix's errors that mean "an input could not be fetched".
const FETCH_FAILURES: &[&str] = &[
    "unable to download",
    "couldn't resolve host",
    "could not resolve host",
    "cannot download",
    "unable to fetch",
    "failed to fetch",
    "in offline mode",
    "cannot substitute",
    "network is unreachable",
];

/// A failed Nix invocation, with what a user needs to act on it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub command: String,
    pub status: Option<i32>,
    pub stderr: String,
}

impl Failure {
    /// Nix's own message: from the first `error:` line on, without the noise warnings.
    pub fn message(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.trim_start().starts_with("error:"))
            .unwrap_or(0);
        let kept: Vec<&str> = lines[start..]
            .iter()
            .copied()
            .filter(|l| !is_noise(l))
            .collect();
        if kept.is_empty() {
            format!(
                "`{}` failed ({}) without a message",
                self.command,
                describe_status(self.status)
            )
        } else {
            kept.join("\n")
        }
    }

    fn mentions(&self, phrases: &[&str]) -> Option<String> {
        let lower = self.stderr.to_lowercase();
        phrases.iter().find(|p| lower.contains(*p)).map(|p| {
            self.stderr
                .lines()
                .find(|l| l.to_lowercase().contains(p) && l.trim_start().starts_with("error:"))
                .or_else(|| self.stderr.lines().find(|l| l.to_lowercase().contains(p)))
                .unwrap_or(p)
                .trim()
                .to_string()
        })
    }

    /// Whether Nix could not fetch something it needed (offline, input not in the store).
    pub fn fetch_failure(&self) -> Option<String> {
        self.mentions(FETCH_FAILURES)
    }
}

/// Warnings that say nothing about the failure (this machine has no nixbld group, by design).
fn is_noise(line: &str) -> bool {
    let l = line.trim();
    (l.starts_with("warning:") && (l.contains("build-users-group") || l.contains("is dirty")))
        || l.starts_with("(use '--show-trace'")
}

pub fn describe_status(status: Option<i32>) -> String {
    match status {
        Some(code) => format!("exit {code}"),
        None => "killed by a signal".to_string(),
    }
}

/// The Nix command-line tools the tier needs.
#[derive(Debug, Clone)]
pub struct Nix {
    pub version: String,
}

impl Nix {
    /// Finds `nix` and `nix-store` on PATH.
    pub fn locate() -> Result<Nix> {
        let out = tool_output(Command::new("nix").arg("--version"), "nix")?;
        tool_output(Command::new("nix-store").arg("--version"), "nix-store")?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(Nix { version })
    }

    /// `nix` with the experimental features the tier uses.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("nix");
        cmd.args(["--extra-experimental-features", "nix-command flakes"]);
        cmd
    }

    /// `nix eval --json <installable> [--apply <expr>]`, as a reader: the lock file is never
    /// written and unfetchable inputs fail fast.
    pub fn eval_json(
        &self,
        installable: &str,
        apply: Option<&str>,
        impure: bool,
    ) -> std::result::Result<Value, Failure> {
        let mut cmd = self.command();
        cmd.arg("eval")
            .arg("--json")
            .arg("--no-write-lock-file")
            .args(EVAL_OPTIONS);
        if impure {
            cmd.arg("--impure");
        }
        cmd.arg(installable);
        if let Some(apply) = apply {
            cmd.arg("--apply").arg(apply);
        }
        let out = run_captured(&mut cmd)?;
        serde_json::from_slice(&out.stdout).map_err(|e| Failure {
            command: render(&cmd),
            status: out.status.code(),
            stderr: format!(
                "nix eval printed something that is not JSON ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            ),
        })
    }

    /// The system Nix builds for by default.
    pub fn current_system(&self) -> Result<String> {
        let mut cmd = self.command();
        cmd.args([
            "eval",
            "--impure",
            "--raw",
            "--expr",
            "builtins.currentSystem",
        ]);
        let out = run_captured(&mut cmd).map_err(|f| VmError::NixEval {
            context: "builtins.currentSystem".into(),
            message: f.message(),
        })?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The local builder's `system-features` and whether remote builders are configured.
    pub fn builder_config(&self) -> Result<BuilderConfig> {
        // `nix config show` (Nix >= 2.20) replaced `nix show-config`.
        let mut last = None;
        for sub in [
            &["config", "show", "--json"][..],
            &["show-config", "--json"][..],
        ] {
            let mut cmd = self.command();
            cmd.args(sub);
            match run_captured(&mut cmd) {
                Ok(out) => {
                    let json: Value =
                        serde_json::from_slice(&out.stdout).map_err(|e| VmError::NixEval {
                            context: "the Nix configuration".into(),
                            message: format!(
                                "`{}` printed something that is not JSON: {e}",
                                render(&cmd)
                            ),
                        })?;
                    return Ok(BuilderConfig::from_json(&json));
                }
                Err(f) => last = Some(f),
            }
        }
        let f = last.expect("at least one attempt");
        Err(VmError::NixEval {
            context: "the Nix configuration (`nix config show`)".into(),
            message: f.message(),
        })
    }
}

/// What the local Nix says about where builds can run.
#[derive(Debug, Clone, Default)]
pub struct BuilderConfig {
    pub system_features: Vec<String>,
    /// Remote builders (`builders`, or a non-empty machines file) may offer other features.
    pub remote_builders: bool,
}

impl BuilderConfig {
    pub fn from_json(json: &Value) -> BuilderConfig {
        let value = |key: &str| {
            json.get(key)
                .and_then(|v| v.get("value").or(Some(v)))
                .cloned()
        };
        let system_features = match value("system-features") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let builders = match value("builders") {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        BuilderConfig {
            system_features,
            remote_builders: has_remote_builders(&builders),
        }
    }
}

fn has_remote_builders(builders: &str) -> bool {
    builders
        .split(['\n', ';'])
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .any(|b| match b.strip_prefix('@') {
            Some(file) => std::fs::read_to_string(file)
                .map(|text| {
                    text.lines()
                        .map(str::trim)
                        .any(|l| !l.is_empty() && !l.starts_with('#'))
                })
                .unwrap_or(false),
            None => true,
        })
}

fn tool_output(cmd: &mut Command, tool: &str) -> Result<Output> {
    match cmd.stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(out),
        Ok(out) => Err(VmError::MissingTool {
            tool: tool.into(),
            hint: format!("`{tool} --version` failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(VmError::MissingTool {
            tool: tool.into(),
            hint: "The VM tier builds NixOS tests with Nix; install Nix (https://nixos.org/download) and put it on PATH.".into(),
        }),
        Err(e) => Err(VmError::MissingTool { tool: tool.into(), hint: format!("running it failed: {e}") }),
    }
}

/// Runs a command to completion, capturing output; a non-zero exit is a [`Failure`].
pub fn run_captured(cmd: &mut Command) -> std::result::Result<Output, Failure> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| Failure {
        command: render(cmd),
        status: None,
        stderr: e.to_string(),
    })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Failure {
            command: render(cmd),
            status: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// A command line as a user could paste it.
pub fn render(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let s = a.to_string_lossy();
            if s.is_empty() || s.contains(|c: char| c.is_whitespace() || "'\"$`\\*?#".contains(c)) {
                format!("'{}'", s.replace('\'', r"'\''"))
            } else {
                s.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A Nix string literal holding `s`.
pub fn nix_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_strings_escape_interpolation_and_quotes() {
        assert_eq!(nix_string(r#"a"b\c${d}"#), r#""a\"b\\c\${d}""#);
    }

    #[test]
    fn failure_message_starts_at_the_error_and_drops_noise() {
        let f = Failure {
            command: "nix eval".into(),
            status: Some(1),
            stderr: "warning: the group 'nixbld' specified in 'build-users-group' does not exist\n\
                     warning: error: unable to download 'x'; retrying in 500 ms\n\
                     error: unable to download 'https://example/t.tar.gz': Couldn't resolve host name (6)\n\
                     (use '--show-trace' to show detailed location information)\n"
                .into(),
        };
        assert_eq!(
            f.message(),
            "error: unable to download 'https://example/t.tar.gz': Couldn't resolve host name (6)"
        );
        assert_eq!(
            f.fetch_failure().as_deref(),
            Some("error: unable to download 'https://example/t.tar.gz': Couldn't resolve host name (6)")
        );
    }

    #[test]
    fn builder_config_reads_both_json_shapes() {
        let json: Value = serde_json::from_str(
            r#"{"system-features":{"value":["benchmark","kvm"]},"builders":{"value":""}}"#,
        )
        .unwrap();
        let c = BuilderConfig::from_json(&json);
        assert_eq!(c.system_features, vec!["benchmark", "kvm"]);
        assert!(!c.remote_builders);
        let json: Value = serde_json::from_str(
            r#"{"system-features":"nixos-test","builders":"ssh://b x86_64-linux"}"#,
        )
        .unwrap();
        let c = BuilderConfig::from_json(&json);
        assert_eq!(c.system_features, vec!["nixos-test"]);
        assert!(c.remote_builders);
    }
}
