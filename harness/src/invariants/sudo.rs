//! sudo, sudo-rs and doas: who can become root and whether a password is asked, read from the
//! sudoers and doas.conf the tools will load (lib/posture/sudo.nix), against paranoid.sudo.mode.

use serde_json::json;

use super::{force, v, Apply, Posture, Violation};
use crate::effective::{Effective, RootPath};

fn describe(p: &RootPath) -> String {
    format!(
        "`{}` (line {} of {}, from {})",
        p.text.replace('\t', " "),
        p.line,
        if p.tool == "doas" { "/etc/doas.conf" } else { "/etc/sudoers" },
        p.origin.describe()
    )
}

/// What undoes the rule behind a path, where an option says it plainly.
fn undo(p: &RootPath) -> Vec<Apply> {
    if p.origin.option.ends_with(".wheelNeedsPassword") {
        vec![force(p.origin.option.clone(), json!(true))]
    } else {
        vec![]
    }
}

pub(super) fn check(p: &Posture, eff: &Effective) -> Vec<Violation> {
    if !p.area_on("sudo") {
        return vec![];
    }
    let Some(s) = &eff.sudo else { return vec![] };
    let mut out = vec![];
    for (name, t) in s.tools.iter().filter(|(_, t)| t.enabled) {
        for f in &t.unjudged {
            out.push(v(
                "sudo.judged",
                format!("{name}: line {} `{}` ({}): {}", f.line.unwrap_or(0), f.text.trim(), f.origin.describe(), f.reason),
                format!(
                    "remove `{}` from {} and express what it should allow with {}.extraRules, so it can be judged",
                    f.text.trim(),
                    f.origin.describe(),
                    f.origin.option.rsplit_once('.').map(|x| x.0).unwrap_or(&f.origin.option)
                ),
            ));
        }
    }
    let enabled: Vec<&String> = s.tools.iter().filter(|(_, t)| t.enabled).map(|(n, _)| n).collect();
    match p.text("sudo.mode").as_str() {
        "removed" if !enabled.is_empty() => out.push(
            v(
                "sudo.mode",
                format!(
                    "with {}, {} still enabled: {}",
                    p.show("sudo.mode"),
                    enabled.iter().map(|n| format!("security.{n}.enable = true")).collect::<Vec<_>>().join(", "),
                    s.paths
                        .iter()
                        .filter(|x| x.account != "root")
                        .map(|x| format!("{} becomes root via {} ({})", x.account, x.tool, describe(x)))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                p.fix("sudo", "sudo.mode", format!(
                    "remove the definition of {}",
                    enabled.iter().map(|n| format!("security.{n}.enable = true")).collect::<Vec<_>>().join(" and ")
                )),
            )
            .applying(enabled.iter().map(|n| force(format!("security.{n}.enable"), json!(false))).collect()),
        ),
        "wheel-only" => {
            for path in s.paths.iter().filter(|x| x.account != "root") {
                let wheel = eff.in_group(&path.account, "wheel");
                if path.account == s.other_user || !wheel {
                    out.push(v(
                        "sudo.mode",
                        format!(
                            "with {}, {} (not in wheel) can become root via {}: {}",
                            p.show("sudo.mode"),
                            path.account,
                            path.tool,
                            describe(path)
                        ),
                        p.fix("sudo", "sudo.mode", format!("remove that rule from {}", path.origin.describe())),
                    ));
                } else if let (Some(by), "none") = (&path.password_by, path.password.as_str()) {
                    // The rule asks a password; a Defaults line waives it.
                    out.push(v(
                        "sudo.mode",
                        format!(
                            "with {}, {} becomes root via {} without a password: {} asks one, but `{}` (line {} of /etc/sudoers, from {}) waives it",
                            p.show("sudo.mode"),
                            path.account,
                            path.tool,
                            describe(path),
                            by.text,
                            by.line,
                            by.origin.describe()
                        ),
                        p.fix("sudo", "sudo.mode", format!("remove `{}` from {}", by.text, by.origin.describe())),
                    ));
                } else if path.password == "none" {
                    out.push(
                        v(
                            "sudo.mode",
                            format!(
                                "with {}, {} becomes root via {} without a password: {}",
                                p.show("sudo.mode"),
                                path.account,
                                path.tool,
                                describe(path)
                            ),
                            p.fix("sudo", "sudo.mode", if path.origin.option.ends_with(".wheelNeedsPassword") {
                                format!("remove the definition of {} = false{}", path.origin.option,
                                    if path.origin.files.is_empty() { String::new() } else { format!(" (in {})", path.origin.files.join(", ")) })
                            } else {
                                format!("drop NOPASSWD from the rule in {}", path.origin.describe())
                            }),
                        )
                        .applying(undo(path)),
                    );
                }
            }
            for (name, t) in s.tools.iter().filter(|(_, t)| t.enabled) {
                if name == "doas" {
                    // NixOS installs doas setuid for everyone (no execWheelOnly exists for it):
                    // the wheel-only promise that nobody else reaches a setuid parser fails.
                    out.push(
                        v(
                            "sudo.mode",
                            format!("with {}, security.doas.enable = true: NixOS installs doas setuid and executable by every user (doas has no execWheelOnly), so every user reaches its parser", p.show("sudo.mode")),
                            p.fix("sudo", "sudo.mode", "remove the definition of security.doas.enable = true (sudo with execWheelOnly serves wheel)"),
                        )
                        .applying(vec![force("security.doas.enable", json!(false))]),
                    );
                } else if !t.exec_wheel_only {
                    out.push(
                        v(
                            "sudo.mode",
                            format!("with {}, security.{name}.execWheelOnly = false: every user can execute {name} and reach its parser", p.show("sudo.mode")),
                            p.fix("sudo", "sudo.mode", format!("remove the definition of security.{name}.execWheelOnly = false")),
                        )
                        .applying(vec![force(format!("security.{name}.execWheelOnly"), json!(true))]),
                    );
                }
            }
        }
        _ => {}
    }
    out
}
