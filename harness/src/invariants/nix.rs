//! The Nix daemon: who may connect and who is trusted, as the daemon reads nix.conf and
//! NIX_CONFIG (lib/posture/nixconf.nix: last assignment wins, `extra-*` appends, `@group` and
//! `*` expanded; NIX_CONFIG from the environment systemd gives the daemon, `environment` and
//! serviceConfig.Environment alike), plus channels and the binary-cache egress block. An
//! environment that sends the daemon to another configuration (EnvironmentFile=, NIX_CONF_DIR,
//! user configuration files) is not judged: `nix.judged`.

use serde_json::{json, Value};

use super::{force, show_json, v, Apply, Posture, Proj, Violation};
use crate::effective::{Effective, NixLine};
use crate::plan::plain;

/// `trusted-users = root` (line 15 of /etc/nix/nix.conf, from nix.settings.trusted-users in a.nix).
fn lines(ls: &[NixLine]) -> String {
    ls.iter()
        .map(|l| {
            format!(
                "`{}` (line {} of {}, from {})",
                l.text.trim(),
                l.line,
                l.source,
                l.origin.describe()
            )
        })
        .collect::<Vec<_>>()
        .join(" then ")
}

/// Definitions that undo every line but the wanted one: each contributing option forced back.
fn undo(ls: &[NixLine], key: &str, want: &[String]) -> Vec<Apply> {
    ls.iter()
        .filter_map(|l| {
            let o = &l.origin.option;
            if o == &format!("nix.settings.{key}") {
                Some(force(o.clone(), json!(want)))
            } else if o.starts_with("nix.settings.extra-") {
                Some(force(o.clone(), Value::Null))
            } else {
                // nix.extraOptions or NIX_CONFIG: text a human must edit.
                None
            }
        })
        .collect()
}

pub(super) fn check(p: &Posture, proj: &Proj, eff: &Effective) -> Vec<Violation> {
    if !p.area_on("nix") {
        return vec![];
    }
    let mut out = vec![];
    let Some(n) = &eff.nix else {
        // nix.enable = false: no daemon to reach, nothing to restrict.
        return out;
    };
    for f in &n.unjudged {
        let option = &f.origin.option;
        let files = if f.origin.files.is_empty() {
            String::new()
        } else {
            format!(" (in {})", f.origin.files.join(", "))
        };
        let Some(line) = f.line else {
            // The daemon's environment sends it to a configuration this model cannot read (an
            // EnvironmentFile=, NIX_CONF_DIR, user configuration files): drop the definition.
            let env_attr = option.starts_with("systemd.services.nix-daemon.environment.")
                || option.starts_with("systemd.globalEnvironment.")
                || option.starts_with("nix.envVars.");
            let list_opt = option.ends_with(".serviceConfig.EnvironmentFile")
                || option.ends_with(".serviceConfig.PassEnvironment");
            let violation = v(
                "nix.judged",
                format!(
                    "with {}, the daemon's environment has `{}` ({}): {}",
                    p.show("nix.enable"),
                    f.text.trim(),
                    f.origin.describe(),
                    f.reason
                ),
                format!(
                    "remove the definition of {option}{files}: the daemon must read /etc/nix/nix.conf (nix.settings) and nothing else; set what it set in nix.settings"
                ),
            );
            out.push(if env_attr {
                violation.applying(vec![force(option.clone(), Value::Null)])
            } else if list_opt {
                violation.applying(vec![force(option.clone(), json!([]))])
            } else {
                // An assignment inside serviceConfig.Environment's free text: the owner edits it.
                violation
            });
            continue;
        };
        out.push(v(
            "nix.judged",
            format!(
                "line {line} of nix.conf, `{}` ({}): {}",
                f.text.trim(),
                f.origin.describe(),
                f.reason
            ),
            format!(
                "remove the include from {}; set what it sets in nix.settings",
                f.origin.option
            ),
        ));
    }
    let mut want: Vec<String> = match p.get("nix.allowedUsers") {
        Some(Value::String(s)) if s == "root" => vec!["root".into()],
        Some(Value::String(s)) if s == "wheel" => vec!["@wheel".into()],
        Some(Value::Array(a)) => a.iter().map(plain).collect(),
        Some(other) => vec![plain(other)],
        None => vec!["@wheel".into()],
    };
    want.sort();
    let mut got = n.allowed_users.value.clone();
    got.sort();
    if got != want {
        let mut violation = v(
            "nix.allowed-users",
            format!(
                "with {}, the daemon allows {:?} (want {:?}): {}",
                p.show("nix.allowedUsers"),
                got,
                want,
                lines(&n.allowed_users.lines)
            ),
            p.fix(
                "nix",
                "nix.enable",
                format!(
                    "remove the definitions behind {} (or change paranoid.nix.allowedUsers)",
                    n.allowed_users
                        .lines
                        .iter()
                        .map(|l| l.origin.describe())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        );
        violation.apply = undo(&n.allowed_users.lines, "allowed-users", &want);
        out.push(violation);
    }
    let extra: Vec<&String> = n
        .trusted_users
        .value
        .iter()
        .filter(|t| *t != "root")
        .collect();
    if !extra.is_empty() {
        let who: Vec<&String> = n
            .trusted_users
            .accounts
            .iter()
            .filter(|a| *a != "root")
            .collect();
        let culprits: Vec<String> = n
            .trusted_users
            .lines
            .iter()
            .filter(|l| extra.iter().any(|e| l.text.contains(e.as_str())))
            .map(|l| {
                let mut files: Vec<&String> =
                    extra.iter().flat_map(|e| l.origin.files_of(e)).collect();
                files.sort();
                files.dedup();
                if files.is_empty() {
                    l.origin.option.clone()
                } else {
                    format!(
                        "{} (in {})",
                        l.origin.option,
                        files
                            .iter()
                            .map(|f| f.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            })
            .collect();
        out.push(
            v(
                "nix.trusted-users",
                format!(
                    "with {}, the daemon trusts {:?}{}: trusted users import unsigned store paths and are root in all but name; {}",
                    p.show("nix.enable"),
                    n.trusted_users.value,
                    if who.is_empty() {
                        String::new()
                    } else {
                        format!(" (accounts {who:?})")
                    },
                    lines(&n.trusted_users.lines)
                ),
                p.fix("nix", "nix.enable", format!(
                    "remove {:?} from {} (keep only root; deploy as root)",
                    extra,
                    culprits.join(", ")
                )),
            )
            .applying(undo(&n.trusted_users.lines, "trusted-users", &["root".to_string()])),
        );
    }
    if p.flag("nix.disableChannels") && proj.opt("nix.channel.enable") != Some(&json!(false)) {
        out.push(
            v(
                "nix.channels",
                format!(
                    "with {}, nix.channel.enable = {}",
                    p.show("nix.disableChannels"),
                    show_json(proj.opt("nix.channel.enable"))
                ),
                p.fix(
                    "nix",
                    "nix.enable",
                    "remove the definition forcing nix.channel.enable = true",
                ),
            )
            .applying(vec![force("nix.channel.enable", json!(false))]),
        );
    }
    if p.flag("nix.blockBinaryCache") {
        let ranges: Vec<String> = p
            .get("nix.binaryCacheRanges")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(plain).collect())
            .unwrap_or_default();
        let rules = format!(
            "{}\n{}",
            proj.rendered("nftables").unwrap_or(""),
            proj.opt("networking.firewall.extraCommands")
                .and_then(Value::as_str)
                .unwrap_or("")
        );
        for r in &ranges {
            if !rules.contains(r.as_str()) {
                out.push(v(
                    "nix.cache-block",
                    format!("with {}, no egress rule mentions {r}", p.show("nix.blockBinaryCache")),
                    p.fix("nix", "nix.enable", "enable the firewall (paranoid.firewall.enable = true) so the egress block has a packet filter to live in"),
                ));
            }
        }
        let subs = &n.substituters.value;
        let cache = |s: &str| s.contains("cache.nixos.org");
        if subs.iter().any(|s| cache(s)) {
            // The settings lines that name the cache, each written again without it; a line of
            // nix.extraOptions or NIX_CONFIG is free text for the owner to edit.
            let culprits: Vec<&NixLine> = n
                .substituters
                .lines
                .iter()
                .filter(|l| l.text.split_whitespace().skip(2).any(cache))
                .collect();
            let apply: Vec<Apply> = culprits
                .iter()
                .filter(|l| l.origin.option.starts_with("nix.settings."))
                .map(|l| {
                    let kept: Vec<Value> = l
                        .text
                        .split_whitespace()
                        .skip(2)
                        .filter(|s| !cache(s))
                        .map(|s| json!(s))
                        .collect();
                    let extra = l.origin.option.starts_with("nix.settings.extra-");
                    force(
                        l.origin.option.clone(),
                        if kept.is_empty() && extra {
                            Value::Null
                        } else {
                            Value::Array(kept)
                        },
                    )
                })
                .collect();
            let options: Vec<String> = culprits.iter().map(|l| l.origin.describe()).collect();
            let violation = v(
                "nix.cache-block",
                format!(
                    "with {}, the daemon still substitutes from cache.nixos.org: {}",
                    p.show("nix.blockBinaryCache"),
                    lines(&n.substituters.lines)
                ),
                p.fix(
                    "nix",
                    "nix.enable",
                    format!(
                        "remove cache.nixos.org from {}",
                        if options.is_empty() {
                            "nix.settings.substituters".to_string()
                        } else {
                            options.join(" and ")
                        }
                    ),
                ),
            );
            out.push(if apply.len() == culprits.len() {
                violation.applying(apply)
            } else {
                violation
            });
        }
    }
    out
}
