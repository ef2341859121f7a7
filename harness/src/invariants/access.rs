//! Firewall and VPN: for every SSH port sshd really listens on, on which interfaces the
//! firewall admits it (lib/posture/firewall.nix: global and per-interface ports and ranges,
//! upstream's `default` interface, trustedInterfaces, extraInputRules, extraCommands,
//! openFirewall), against "SSH only over the VPN".

use serde_json::{json, Value};

use super::{force, show_json, v, Apply, Posture, Proj, Violation};
use crate::effective::{Effective, Route};

/// The definitions that close `port` on the route that opened it (none for free text).
fn close(route: &Route, port: u16, iface: &str, proj: &Proj) -> Vec<Apply> {
    let minus = |list: Option<&Value>, drop: &Value| -> Value {
        Value::Array(
            list.and_then(Value::as_array)
                .map(|a| a.iter().filter(|x| *x != drop).cloned().collect())
                .unwrap_or_default(),
        )
    };
    let o = route.option.as_str();
    if o == "services.openssh.openFirewall" {
        vec![force(o, json!(false))]
    } else if o == "networking.firewall.allowedTCPPorts" {
        vec![force(
            o,
            minus(proj.opt("networking.firewall.allowedTCPPorts"), &json!(port)),
        )]
    } else if let Some(name) = o
        .strip_prefix("networking.firewall.interfaces.")
        .and_then(|r| r.strip_suffix(".allowedTCPPorts"))
    {
        let current = proj
            .opt("networking.firewall.interfaces")
            .and_then(|i| i.get(name))
            .and_then(|i| i.get("allowedTCPPorts"));
        vec![force(o, minus(current, &json!(port)))]
    } else if o.ends_with("allowedTCPPortRanges") {
        route
            .ranges
            .as_ref()
            .map(|r| vec![force(o, without_port(r, port))])
            .unwrap_or_default()
    } else if o == "networking.firewall.trustedInterfaces" {
        vec![force(
            o,
            minus(
                proj.opt("networking.firewall.trustedInterfaces"),
                &json!(iface),
            ),
        )]
    } else if o == "networking.firewall.enable" {
        vec![force(o, json!(true))]
    } else {
        vec![]
    }
}

/// A list of `{ from; to; }` port ranges with `port` cut out of every range covering it.
fn without_port(ranges: &Value, port: u16) -> Value {
    let port = u64::from(port);
    let mut out = vec![];
    for r in ranges.as_array().into_iter().flatten() {
        let (Some(from), Some(to)) = (r["from"].as_u64(), r["to"].as_u64()) else {
            out.push(r.clone());
            continue;
        };
        if port < from || port > to {
            out.push(r.clone());
            continue;
        }
        if from < port {
            out.push(json!({ "from": from, "to": port - 1 }));
        }
        if port < to {
            out.push(json!({ "from": port + 1, "to": to }));
        }
    }
    Value::Array(out)
}

/// The definitions that make `ports` reachable over the VPN interface again, the way
/// paranoid.vpn.trust opens it: the interface trusted, or the ports opened on it.
pub(super) fn open_over_vpn(p: &Posture, proj: &Proj, vpn: &str, ports: &[u16]) -> (String, Vec<Apply>) {
    let plus = |list: Option<&Value>, add: Vec<Value>| -> Value {
        let mut a: Vec<Value> = list.and_then(Value::as_array).cloned().unwrap_or_default();
        for x in add {
            if !a.contains(&x) {
                a.push(x);
            }
        }
        Value::Array(a)
    };
    if p.text("vpn.trust") == "ssh" {
        let option = format!("networking.firewall.interfaces.{vpn}.allowedTCPPorts");
        let current = proj
            .opt("networking.firewall.interfaces")
            .and_then(|i| i.get(vpn))
            .and_then(|i| i.get("allowedTCPPorts"));
        (
            format!("remove the definition that overrides {option} (paranoid.vpn.trust = \"ssh\" opens the SSH ports there)"),
            vec![force(option, plus(current, ports.iter().map(|p| json!(p)).collect()))],
        )
    } else {
        (
            format!("remove the definition that overrides networking.firewall.trustedInterfaces (paranoid.vpn.trust = \"interface\" trusts {vpn})"),
            vec![force(
                "networking.firewall.trustedInterfaces",
                plus(proj.opt("networking.firewall.trustedInterfaces"), vec![json!(vpn)]),
            )],
        )
    }
}

pub(super) fn check(p: &Posture, proj: &Proj, eff: &Effective) -> Vec<Violation> {
    let mut out = vec![];
    if p.area_on("firewall") && proj.opt("networking.firewall.enable") != Some(&json!(true)) {
        out.push(
            v(
                "firewall.enabled",
                format!(
                    "with {}, networking.firewall.enable = {}",
                    p.show("firewall.enable"),
                    show_json(proj.opt("networking.firewall.enable"))
                ),
                p.fix(
                    "firewall",
                    "firewall.enable",
                    "remove the definition of networking.firewall.enable = false",
                ),
            )
            .applying(vec![force("networking.firewall.enable", json!(true))]),
        );
    }
    let Some(fw) = &eff.firewall else {
        return out;
    };
    let vpn_only = p.flag("vpn.sshOnlyOverVpn");
    if vpn_only || p.area_on("vpn") {
        for f in &fw.unjudged {
            out.push(v(
                "vpn.judged",
                format!(
                    "line {} of {}, `{}`: {}",
                    f.line.unwrap_or(0),
                    f.origin().describe(),
                    f.text,
                    f.reason
                ),
                format!(
                    "open ports with networking.firewall.interfaces.<name>.allowedTCPPorts instead of free text in {}, or write the rule with a literal `iifname` and `tcp dport`",
                    f.origin().option
                ),
            ));
        }
    }
    if vpn_only {
        for reach in &fw.public_ssh {
            let via = reach
                .routes
                .iter()
                .map(Route::describe)
                .collect::<Vec<_>>()
                .join("; ");
            let iface = if reach.interface.starts_with('<') {
                format!("every interface the configuration does not name ({})", reach.interface)
            } else {
                format!("interface {}", reach.interface)
            };
            let fix = match reach.routes.first() {
                Some(r) if r.option.starts_with("networking.firewall.extra") => format!(
                    "remove the rule in {} that accepts port {}, or restrict it to the VPN interface",
                    r.option, reach.port
                ),
                Some(r) => format!(
                    "remove port {} from {}{} (paranoid opens it on the VPN interface only)",
                    reach.port,
                    r.option,
                    if r.files.is_empty() {
                        String::new()
                    } else {
                        format!(" in {}", r.files.join(", "))
                    }
                ),
                None => "close the port outside the VPN".into(),
            };
            out.push(
                v(
                    "vpn.ssh-not-global",
                    format!(
                        "with {}, sshd's port {} is reachable on {}, outside the VPN {}: {via}",
                        p.show("vpn.sshOnlyOverVpn"),
                        reach.port,
                        iface,
                        fw.vpn.as_deref().unwrap_or("(none)")
                    ),
                    p.fix("vpn", "vpn.sshOnlyOverVpn", fix),
                )
                .applying(
                    reach
                        .routes
                        .iter()
                        .flat_map(|r| close(r, reach.port, &reach.interface, proj))
                        .collect(),
                ),
            );
        }
    }
    if p.area_on("vpn") {
        let vpn = fw.vpn.clone().unwrap_or_default();
        let missing: Vec<u16> = fw
            .ssh
            .iter()
            .filter(|t| {
                !t.interfaces
                    .iter()
                    .any(|i| i.interface == vpn && i.reachable)
            })
            .map(|t| t.port)
            .collect();
        if !missing.is_empty() {
            // Where the firewall is what closes it, reopen it the way the knob does; a
            // ListenAddress that leaves the VPN out is the owner's to move.
            let closed: Vec<u16> = fw
                .ssh
                .iter()
                .filter(|t| missing.contains(&t.port))
                .filter(|t| t.interfaces.iter().any(|i| i.interface == vpn && i.listening && !i.open))
                .map(|t| t.port)
                .collect();
            let (fix, apply) = if closed.len() == missing.len() {
                open_over_vpn(p, proj, &vpn, &missing)
            } else {
                (
                    format!("move services.openssh.listenAddresses (or the ListenAddress in services.openssh.extraConfig) so sshd listens on {vpn}'s address"),
                    vec![],
                )
            };
            out.push(
                v(
                    "vpn.interface-trusted",
                    format!(
                        "with {} and {}, SSH port(s) {missing:?} cannot be reached over {vpn}: {}",
                        p.show("vpn.interface"),
                        p.show("vpn.trust"),
                        if closed.len() == missing.len() {
                            "the firewall neither trusts the interface (networking.firewall.trustedInterfaces) nor opens the port on it"
                        } else {
                            "sshd does not listen on its address"
                        }
                    ),
                    p.fix("vpn", "vpn.sshOnlyOverVpn", fix),
                )
                .applying(apply),
            );
        }
    }
    out
}
