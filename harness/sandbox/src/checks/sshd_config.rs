//! Adapting a rendered sshd_config to run here, changing only what cannot exist on this
//! machine (each change recorded): host keys, listen address, pid file, the sftp-server path,
//! the system authorized_keys directory, algorithm names and keywords this OpenSSH does not
//! know. Security keywords are never touched. Also: reading `sshd -T` output.
//!
//! Two purposes: a live server (`Purpose::Live`, everything above) and `sshd -T` alone
//! (`Purpose::Dump`: only what sshd must load or parse to print its answer, i.e. host keys
//! and unknown algorithms/keywords; paths it never opens in that mode stay as rendered).

use std::collections::{BTreeMap, BTreeSet};

/// Keywords whose value is an algorithm list, and the `ssh -Q` query that lists what this
/// OpenSSH knows for each.
pub const ALGORITHM_KEYWORDS: &[(&str, &str)] = &[
    ("kexalgorithms", "kex"),
    ("ciphers", "cipher"),
    ("macs", "mac"),
    ("hostkeyalgorithms", "HostKeyAlgorithms"),
    ("pubkeyacceptedalgorithms", "PubkeyAcceptedAlgorithms"),
    ("pubkeyacceptedkeytypes", "PubkeyAcceptedAlgorithms"),
    ("casignaturealgorithms", "sig"),
    ("hostbasedacceptedalgorithms", "HostbasedAcceptedAlgorithms"),
];

/// Where the system-wide authorized keys live on NixOS.
pub const NIXOS_KEYS_DIR: &str = "/etc/ssh/authorized_keys.d/";
/// Debian's sftp-server.
pub const DEBIAN_SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// Gives a throwaway key path for a host key (type, bits).
pub type HostKeyFn<'a> = &'a dyn Fn(&str, Option<u32>) -> Result<String, String>;

/// What the adapted file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A server that listens and takes logins here.
    Live,
    /// `sshd -t`/`sshd -T` only: it loads the host keys, parses everything, opens nothing else.
    Dump,
}

/// Keywords newer OpenSSH releases (NixOS's OpenSSH 10) know and OpenSSH 9.2 rejects as a
/// "Bad configuration option". None of them is a keyword the posture is judged on; each is
/// dropped only when this sshd rejects it, and the drop is recorded.
pub const NEWER_KEYWORDS: &[(&str, &str)] = &[
    ("persourcepenalties", "9.8"),
    ("persourcepenaltyexemptlist", "9.8"),
    ("sshdsessionpath", "9.8"),
    ("sshdauthpath", "10.0"),
    ("refuseconnection", "10.0"),
];

/// `… line N: Bad configuration option: X` from `sshd -t`: (N, X).
pub fn bad_option(output: &str) -> Option<(usize, String)> {
    output.lines().find_map(|l| {
        let (head, kw) = l.split_once("Bad configuration option:")?;
        let n = head
            .rsplit_once("line ")?
            .1
            .trim()
            .trim_end_matches(':')
            .parse()
            .ok()?;
        Some((n, kw.trim().to_string()))
    })
}

/// Drop line `n` (1-based) of `text` when its keyword is one of [`NEWER_KEYWORDS`]; the
/// adaptation says what and why. Anything else this sshd rejects is an error: the
/// configuration itself is wrong, or it needs a newer OpenSSH in a way that changes the posture.
pub fn drop_newer_keyword(text: &str, n: usize, keyword: &str) -> Result<(String, String), String> {
    let k = keyword.to_ascii_lowercase();
    let Some((_, since)) = NEWER_KEYWORDS.iter().find(|(kw, _)| *kw == k) else {
        return Err(format!(
            "sshd rejects `{keyword}` (line {n}): Bad configuration option"
        ));
    };
    let lines: Vec<&str> = text.lines().collect();
    let line = lines
        .get(n.wrapping_sub(1))
        .ok_or_else(|| format!("sshd names line {n}, which the file does not have"))?;
    let why = format!(
        "`{}` dropped: OpenSSH {since} added {keyword}, this OpenSSH does not know it (not a keyword the posture is judged on)",
        line.trim()
    );
    let kept: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| i + 1 != n)
        .map(|(_, l)| *l)
        .collect();
    Ok((kept.join("\n") + "\n", why))
}

/// What the adaptation needs from the caller.
pub struct AdaptInput<'a> {
    pub purpose: Purpose,
    /// A throwaway key path for (type, bits) of each HostKey.
    pub host_key: HostKeyFn<'a>,
    /// (path, type, bits) from `services.openssh.hostKeys`, to know each HostKey's type.
    pub declared_host_keys: &'a [(String, String, Option<u32>)],
    /// Replacement for /etc/ssh/authorized_keys.d/ (ends with '/').
    pub keys_dir: &'a str,
    pub pid_file: &'a str,
    /// Algorithm names this OpenSSH knows, by `ssh -Q` query.
    pub known: &'a BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Default)]
pub struct Adapted {
    pub text: String,
    /// One line per change: "HostKey /etc/ssh/ssh_host_ed25519_key → <tmp> (throwaway ed25519 key)".
    pub adaptations: Vec<String>,
    pub ports: Vec<u16>,
}

fn split_keyword(line: &str) -> Option<(String, String, String)> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let indent = &line[..line.len() - t.len()];
    let end = t
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(t.len());
    let key = &t[..end];
    let rest = t[end..].trim_start_matches(|c: char| c.is_whitespace() || c == '=');
    Some((
        indent.to_string(),
        key.to_string(),
        rest.trim_end().to_string(),
    ))
}

fn key_type_from_path(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let t = file.strip_prefix("ssh_host_")?.strip_suffix("_key")?;
    Some(t.to_string())
}

/// Adapt `text`; Err when the file cannot run here at all (e.g. no algorithm left).
pub fn adapt(text: &str, input: &AdaptInput) -> Result<Adapted, String> {
    let mut out = Adapted::default();
    let mut lines: Vec<String> = vec![];
    let mut seen_listen = false;
    let mut seen_pid = false;
    let mut seen_hostkey = false;
    let mut first_match: Option<usize> = None;
    for line in text.lines() {
        let Some((indent, key, value)) = split_keyword(line) else {
            lines.push(line.to_string());
            continue;
        };
        let k = key.to_ascii_lowercase();
        if k == "match" && first_match.is_none() {
            first_match = Some(lines.len());
        }
        match k.as_str() {
            "include" => {
                return Err(format!(
                    "`{line}`: Include of files from the target system cannot be followed here"
                ))
            }
            "hostkey" => {
                seen_hostkey = true;
                let declared = input
                    .declared_host_keys
                    .iter()
                    .find(|(p, _, _)| *p == value);
                let (ty, bits) = match declared {
                    Some((_, t, b)) => (t.clone(), *b),
                    None => (
                        key_type_from_path(&value)
                            .ok_or_else(|| format!("HostKey {value}: cannot tell its key type"))?,
                        None,
                    ),
                };
                let bits = if ty == "rsa" {
                    bits.or(Some(4096))
                } else {
                    bits
                };
                let p = (input.host_key)(&ty, bits)?;
                out.adaptations.push(match input.purpose {
                    Purpose::Live => format!(
                        "HostKey {value} → {p} (throwaway {ty}{} key)",
                        bits.map(|b| format!(" {b}-bit")).unwrap_or_default()
                    ),
                    Purpose::Dump => format!(
                        "HostKey {value} → {p} (a throwaway key: sshd -T loads the host keys, and prints the same whatever their type)"
                    ),
                });
                lines.push(format!("{indent}{key} {p}"));
            }
            "port" => {
                out.ports.extend(
                    value
                        .split_whitespace()
                        .filter_map(|p| p.parse::<u16>().ok()),
                );
                lines.push(line.to_string());
            }
            "listenaddress" | "pidfile" | "subsystem" | "authorizedkeysfile"
                if input.purpose == Purpose::Dump =>
            {
                lines.push(line.to_string());
            }
            "listenaddress" => {
                seen_listen = true;
                let port = value
                    .rsplit_once(':')
                    .filter(|(h, _)| !h.contains(':') || h.ends_with(']'))
                    .map(|(_, p)| p.to_string());
                let new = match port {
                    Some(p) if p.chars().all(|c| c.is_ascii_digit()) => format!("127.0.0.1:{p}"),
                    _ => "127.0.0.1".to_string(),
                };
                out.adaptations.push(format!(
                    "ListenAddress {value} → {new} (sshd runs in a private network namespace)"
                ));
                lines.push(format!("{indent}{key} {new}"));
            }
            "pidfile" => {
                seen_pid = true;
                out.adaptations
                    .push(format!("PidFile {value} → {}", input.pid_file));
                lines.push(format!("{indent}{key} {}", input.pid_file));
            }
            "subsystem" => {
                let mut parts = value.split_whitespace();
                let name = parts.next().unwrap_or_default();
                let cmd = parts.next().unwrap_or_default();
                let args: Vec<&str> = parts.collect();
                if name == "sftp" && cmd != "internal-sftp" && cmd != DEBIAN_SFTP_SERVER {
                    let mut new = format!("{name} {DEBIAN_SFTP_SERVER}");
                    for a in &args {
                        new.push(' ');
                        new.push_str(a);
                    }
                    out.adaptations.push(format!("Subsystem sftp {cmd} → {DEBIAN_SFTP_SERVER} (Debian's sftp-server; the line stays)"));
                    lines.push(format!("{indent}{key} {new}"));
                } else {
                    lines.push(line.to_string());
                }
            }
            "authorizedkeysfile" => {
                let mut changed = false;
                let toks: Vec<String> = value
                    .split_whitespace()
                    .map(|t| match t.strip_prefix(NIXOS_KEYS_DIR) {
                        Some(rest) => {
                            changed = true;
                            format!("{}{rest}", input.keys_dir)
                        }
                        None => t.to_string(),
                    })
                    .collect();
                let new = toks.join(" ");
                if changed && input.keys_dir != NIXOS_KEYS_DIR {
                    out.adaptations.push(format!(
                        "AuthorizedKeysFile {value} → {new} (holds the throwaway test keys)"
                    ));
                }
                lines.push(format!("{indent}{key} {new}"));
            }
            _ => {
                if let Some((_, query)) = ALGORITHM_KEYWORDS.iter().find(|(kw, _)| *kw == k) {
                    let known = input.known.get(*query).ok_or_else(|| {
                        format!("no `ssh -Q {query}` list to check {key} against")
                    })?;
                    let (prefix, list) = match value.chars().next() {
                        Some(c @ ('+' | '-' | '^')) => (c.to_string(), &value[1..]),
                        _ => (String::new(), value.as_str()),
                    };
                    let (keep, drop): (Vec<&str>, Vec<&str>) = list
                        .split(',')
                        .filter(|a| !a.is_empty())
                        // A wildcard entry is a pattern over the known names (kex.c
                        // kex_assemble_names): known when it matches one of them.
                        .partition(|a| known.contains(*a) || (a.contains(['*', '?']) && known.iter().any(|k| glob(a, k))));
                    if !drop.is_empty() {
                        if keep.is_empty() {
                            return Err(format!("{key}: this OpenSSH knows none of {list}"));
                        }
                        out.adaptations.push(format!(
                            "{key}: dropped {} (unknown to this OpenSSH: not in `ssh -Q {query}`)",
                            drop.join(",")
                        ));
                        lines.push(format!("{indent}{key} {prefix}{}", keep.join(",")));
                    } else {
                        lines.push(line.to_string());
                    }
                } else {
                    lines.push(line.to_string());
                }
            }
        }
    }
    // Global lines must come before the first Match block.
    let at = first_match.unwrap_or(lines.len());
    let mut added = vec![];
    let live = input.purpose == Purpose::Live;
    if live && !seen_listen {
        added.push("ListenAddress 127.0.0.1".to_string());
        out.adaptations.push("ListenAddress 127.0.0.1 added (none rendered; sshd runs in a private network namespace)".into());
    }
    if live && !seen_pid {
        added.push(format!("PidFile {}", input.pid_file));
        out.adaptations.push(format!(
            "PidFile {} added (none rendered; the default is the host's /run/sshd.pid)",
            input.pid_file
        ));
    }
    if !seen_hostkey {
        let p = (input.host_key)("ed25519", None)?;
        added.push(format!("HostKey {p}"));
        out.adaptations.push(format!(
            "HostKey {p} added (none rendered; sshd would read the host's /etc/ssh keys)"
        ));
    }
    if out.ports.is_empty() {
        out.ports.push(22);
    }
    for (i, l) in added.into_iter().enumerate() {
        lines.insert(at + i, l);
    }
    out.text = lines.join("\n") + "\n";
    Ok(out)
}

/// `line` added to the global section (before the first Match block, where sshd reads it for
/// every connection).
pub fn add_global_line(text: &str, line: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| split_keyword(l).is_some_and(|(_, k, _)| k.eq_ignore_ascii_case("match")))
        .unwrap_or(lines.len());
    lines.insert(at, line);
    lines.join("\n") + "\n"
}

/// Weak lines put FIRST in a copy of the config: sshd keeps the first value it reads, so
/// these win. The probes must catch every one of them on the control server.
pub fn weak_control(adapted: &str, extra_allowed_user: &str) -> String {
    let mut head = vec![
        "# paranoid-sandbox positive control: deliberately weak; every probe must catch it"
            .to_string(),
        "PasswordAuthentication yes".into(),
        "KbdInteractiveAuthentication yes".into(),
        // keyboard-interactive logins go through PAM on Linux: a file with UsePAM no would
        // leave that probe nothing to catch.
        "UsePAM yes".into(),
        "AuthenticationMethods any".into(),
        "PermitRootLogin yes".into(),
        "AllowTcpForwarding yes".into(),
        "AllowAgentForwarding yes".into(),
        "AllowStreamLocalForwarding yes".into(),
        "DisableForwarding no".into(),
        "PermitTunnel yes".into(),
    ];
    let has = |kw: &str| {
        adapted
            .lines()
            .filter_map(split_keyword)
            .any(|(_, k, _)| k.eq_ignore_ascii_case(kw))
    };
    if has("AllowUsers") {
        // AllowUsers lines add up; this admits the test user and root next to the rendered ones.
        head.push(format!("AllowUsers {extra_allowed_user} root"));
    }
    if !adapted
        .lines()
        .filter_map(split_keyword)
        .any(|(_, k, v)| k.eq_ignore_ascii_case("Subsystem") && v.starts_with("sftp"))
    {
        head.push(format!("Subsystem sftp {DEBIAN_SFTP_SERVER}"));
    }
    head.join("\n") + "\n" + adapted
}

/// `sshd -T` output: lower-case keyword → every value line it printed.
pub fn parse_effective(out: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in out.lines() {
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        let (k, v) = l.split_once(' ').unwrap_or((l, ""));
        m.entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    m
}

/// The `ssh -Q` lists the adaptation reads to learn which algorithms this OpenSSH knows.
pub const ALGORITHM_QUERIES: &[&str] = &[
    "kex",
    "cipher",
    "mac",
    "HostKeyAlgorithms",
    "PubkeyAcceptedAlgorithms",
    "sig",
    "HostbasedAcceptedAlgorithms",
];

/// sshd -T prints PermitRootLogin prohibit-password under its old name.
pub fn effective_root_login(knob: &str) -> &str {
    match knob {
        "prohibit-password" => "without-password",
        other => other,
    }
}

/// OpenSSH's match_pattern: `*` any run of characters, `?` one character.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn algorithm_wildcards_match_like_openssh() {
        assert!(super::glob("ssh-rsa*", "ssh-rsa-cert-v01@openssh.com"));
        assert!(super::glob("*ed25519*", "sk-ssh-ed25519@openssh.com"));
        assert!(super::glob("rsa-sha2-?56", "rsa-sha2-256"));
        assert!(!super::glob("rsa-sha2-?56", "rsa-sha2-512"));
        assert!(!super::glob("ecdsa-*", "sk-ecdsa-sha2-nistp256@openssh.com"));
    }

    use super::*;

    fn known() -> BTreeMap<String, BTreeSet<String>> {
        let mut m = BTreeMap::new();
        m.insert(
            "kex".to_string(),
            ["curve25519-sha256", "curve25519-sha256@libssh.org"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        // The other lists empty: this test OpenSSH knows only those two kex.
        for &q in ALGORITHM_QUERIES {
            m.entry(q.to_string()).or_default();
        }
        m
    }

    fn input<'a>(k: &'a BTreeMap<String, BTreeSet<String>>, hk: HostKeyFn<'a>) -> AdaptInput<'a> {
        AdaptInput {
            purpose: Purpose::Live,
            host_key: hk,
            declared_host_keys: &[],
            keys_dir: "/t/keys/",
            pid_file: "/t/pid",
            known: k,
        }
    }

    #[test]
    fn adaptation_changes_only_what_cannot_exist_here_and_keeps_security_keywords() {
        let k = known();
        let hk = |t: &str, _b: Option<u32>| Ok(format!("/t/hk_{t}"));
        let cfg = "PasswordAuthentication no\nKexAlgorithms mlkem768x25519-sha256,curve25519-sha256\nAllowTcpForwarding no\nPort 22\n\
                   Subsystem sftp /nix/store/x-openssh/libexec/sftp-server \nAuthorizedKeysFile /etc/ssh/authorized_keys.d/%u\n\
                   HostKey /etc/ssh/ssh_host_ed25519_key\nMatch User x\n  AllowTcpForwarding yes\n";
        let a = adapt(cfg, &input(&k, &hk)).unwrap();
        assert!(a.text.starts_with("PasswordAuthentication no\nKexAlgorithms curve25519-sha256\nAllowTcpForwarding no\nPort 22\n"), "{}", a.text);
        assert!(a
            .text
            .contains("Subsystem sftp /usr/lib/openssh/sftp-server\n"));
        assert!(a.text.contains("AuthorizedKeysFile /t/keys/%u\n"));
        assert!(a.text.contains("HostKey /t/hk_ed25519\n"));
        // Added global lines go before the Match block, which is kept verbatim.
        let m = a.text.find("Match User x").unwrap();
        assert!(
            a.text.find("ListenAddress 127.0.0.1").unwrap() < m
                && a.text.find("PidFile /t/pid").unwrap() < m
        );
        assert!(a.text.ends_with("Match User x\n  AllowTcpForwarding yes\n"));
        assert!(a
            .adaptations
            .iter()
            .any(|l| l.contains("dropped mlkem768x25519-sha256")));
        assert_eq!(a.ports, vec![22]);
    }

    #[test]
    fn an_algorithm_list_with_nothing_known_is_an_error_not_a_silent_default() {
        let k = known();
        let hk = |t: &str, _b: Option<u32>| Ok(format!("/t/hk_{t}"));
        assert!(adapt("KexAlgorithms mlkem768x25519-sha256\n", &input(&k, &hk)).is_err());
    }

    #[test]
    fn weak_control_puts_weak_lines_first_and_admits_the_test_user() {
        let c = weak_control("AllowUsers root\nPasswordAuthentication no\n", "pzs1u");
        assert!(
            c.find("PasswordAuthentication yes").unwrap()
                < c.find("PasswordAuthentication no").unwrap()
        );
        assert!(c.contains("AllowUsers pzs1u root\n") && c.contains("Subsystem sftp"));
    }

    #[test]
    fn effective_values_keep_every_line_of_repeated_keywords() {
        let m = parse_effective("port 22\nsubsystem sftp /usr/lib/openssh/sftp-server\nallowusers root\nallowusers bob\n");
        assert_eq!(m["allowusers"], vec!["root", "bob"]);
        assert_eq!(m["subsystem"], vec!["sftp /usr/lib/openssh/sftp-server"]);
    }
}
