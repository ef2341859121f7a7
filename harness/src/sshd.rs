//! sshd_config as sshd reads it: keywords are case-insensitive, the FIRST value of a keyword
//! wins (except the keywords that accumulate), `ChallengeResponseAuthentication` is an alias of
//! `KbdInteractiveAuthentication`, and a `Match` line ends the global section: what follows
//! applies only to matching connections.

use std::collections::BTreeMap;

/// Keywords whose occurrences add up instead of the first one winning.
const ACCUMULATING: &[&str] = &[
    "allowusers",
    "denyusers",
    "allowgroups",
    "denygroups",
    "acceptenv",
    "hostkey",
    "listenaddress",
    "port",
    "setenv",
];

/// Old spellings sshd still accepts, mapped to the keyword they set.
const ALIASES: &[(&str, &str)] = &[
    (
        "challengeresponseauthentication",
        "kbdinteractiveauthentication",
    ),
    ("pubkeyacceptedkeytypes", "pubkeyacceptedalgorithms"),
    ("hostbasedacceptedkeytypes", "hostbasedacceptedalgorithms"),
    ("skeyauthentication", "kbdinteractiveauthentication"),
];

/// sshd's compiled-in defaults for the keywords the invariants read (OpenSSH 9).
const DEFAULTS: &[(&str, &str)] = &[
    ("passwordauthentication", "yes"),
    ("kbdinteractiveauthentication", "yes"),
    ("authenticationmethods", "any"),
    ("allowtcpforwarding", "yes"),
    ("allowagentforwarding", "yes"),
    ("allowstreamlocalforwarding", "yes"),
    ("x11forwarding", "no"),
    ("disableforwarding", "no"),
    ("permittunnel", "no"),
    ("gatewayports", "no"),
    ("permitrootlogin", "prohibit-password"),
    (
        "authorizedkeysfile",
        ".ssh/authorized_keys .ssh/authorized_keys2",
    ),
];

/// One directive: canonical lower-case keyword, its arguments as written, its line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub keyword: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshdConfig {
    /// Global directives in file order (before the first `Match`).
    pub global: Vec<Directive>,
    /// `Match <criteria>` blocks with their directives.
    pub matches: Vec<(String, Vec<Directive>)>,
    /// `Subsystem <name> <command>` entries (each name may appear once).
    pub subsystems: BTreeMap<String, String>,
    /// `Include` lines: files this parser cannot see.
    pub includes: Vec<String>,
}

fn canonical(keyword: &str) -> String {
    let k = keyword.to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(a, _)| *a == k)
        .map(|(_, c)| c.to_string())
        .unwrap_or(k)
}

/// Splits `Keyword value` / `Keyword=value`.
fn split(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (k, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    Some((k, rest))
}

impl SshdConfig {
    pub fn parse(text: &str) -> SshdConfig {
        let mut cfg = SshdConfig::default();
        let mut current: Option<usize> = None;
        for (i, raw) in text.lines().enumerate() {
            let Some((k, v)) = split(raw) else { continue };
            let keyword = canonical(k);
            let d = Directive {
                keyword: keyword.clone(),
                value: v.to_string(),
                line: i + 1,
            };
            match keyword.as_str() {
                "match" => {
                    cfg.matches.push((v.to_string(), Vec::new()));
                    current = Some(cfg.matches.len() - 1);
                }
                "include" => cfg.includes.push(v.to_string()),
                "subsystem" if current.is_none() => {
                    let mut parts = v.splitn(2, char::is_whitespace);
                    let name = parts.next().unwrap_or("").to_string();
                    cfg.subsystems
                        .entry(name)
                        .or_insert_with(|| parts.next().unwrap_or("").trim().to_string());
                }
                _ => match current {
                    Some(m) => cfg.matches[m].1.push(d),
                    None => cfg.global.push(d),
                },
            }
        }
        cfg
    }

    /// The effective global value of a keyword: its first occurrence, else sshd's default.
    /// Accumulating keywords give all their values joined by a space.
    pub fn get(&self, keyword: &str) -> Option<String> {
        let k = canonical(keyword);
        if ACCUMULATING.contains(&k.as_str()) {
            let all: Vec<&str> = self
                .global
                .iter()
                .filter(|d| d.keyword == k)
                .map(|d| d.value.as_str())
                .collect();
            return if all.is_empty() {
                None
            } else {
                Some(all.join(" "))
            };
        }
        self.first(&k).map(|d| d.value.clone()).or_else(|| {
            DEFAULTS
                .iter()
                .find(|(d, _)| *d == k)
                .map(|(_, v)| v.to_string())
        })
    }

    /// The first global directive of a keyword, if the file has one.
    pub fn first(&self, keyword: &str) -> Option<&Directive> {
        let k = canonical(keyword);
        self.global.iter().find(|d| d.keyword == k)
    }

    /// Later global occurrences that sshd ignores (the first one won).
    pub fn shadowed(&self, keyword: &str) -> Vec<&Directive> {
        let k = canonical(keyword);
        self.global
            .iter()
            .filter(|d| d.keyword == k)
            .skip(1)
            .collect()
    }

    /// `Match` blocks that set the keyword, with the value they set.
    pub fn in_matches(&self, keyword: &str) -> Vec<(&str, &Directive)> {
        let k = canonical(keyword);
        self.matches
            .iter()
            .filter_map(|(crit, ds)| {
                ds.iter()
                    .find(|d| d.keyword == k)
                    .map(|d| (crit.as_str(), d))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_occurrence_wins_case_insensitively() {
        let c = SshdConfig::parse(
            "passwordauthentication no\nPasswordAuthentication yes\nAllowTcpForwarding=yes\n",
        );
        assert_eq!(c.get("PasswordAuthentication").as_deref(), Some("no"));
        assert_eq!(c.shadowed("PASSWORDAUTHENTICATION").len(), 1);
        assert_eq!(c.get("allowtcpforwarding").as_deref(), Some("yes"));
    }

    #[test]
    fn the_challenge_response_alias_sets_kbd_interactive() {
        let c = SshdConfig::parse(
            "ChallengeResponseAuthentication yes\nKbdInteractiveAuthentication no\n",
        );
        assert_eq!(
            c.get("KbdInteractiveAuthentication").as_deref(),
            Some("yes")
        );
    }

    #[test]
    fn match_blocks_end_the_global_section() {
        let c = SshdConfig::parse("X11Forwarding no\nMatch User bob\n  AllowTcpForwarding yes\n  PasswordAuthentication yes\n");
        assert_eq!(
            c.get("AllowTcpForwarding").as_deref(),
            Some("yes"),
            "sshd's default: the Match line is not global"
        );
        assert!(c.first("AllowTcpForwarding").is_none());
        assert_eq!(c.in_matches("passwordauthentication")[0].0, "User bob");
    }

    #[test]
    fn defaults_apply_when_absent_and_accumulating_keywords_add_up() {
        let c = SshdConfig::parse(
            "AllowUsers root\nAllowUsers admin\nSubsystem sftp /x/sftp-server\n# comment\n",
        );
        assert_eq!(c.get("PasswordAuthentication").as_deref(), Some("yes"));
        assert_eq!(c.get("AllowUsers").as_deref(), Some("root admin"));
        assert_eq!(
            c.subsystems.get("sftp").map(String::as_str),
            Some("/x/sftp-server")
        );
    }
}
