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
            out.push(v(
                "vpn.interface-trusted",
                format!(
                    "with {} and {}, SSH port(s) {missing:?} cannot be reached over {vpn}: it is neither trusted (networking.firewall.trustedInterfaces) nor carries the port, or sshd does not listen there",
                    p.show("vpn.interface"),
                    p.show("vpn.trust"),
                ),
                p.fix("vpn", "vpn.sshOnlyOverVpn", format!("remove the definition that overrides networking.firewall.trustedInterfaces / networking.firewall.interfaces.{vpn}, or the ListenAddress that leaves {vpn} out")),
            ));
        }
    }
    out
}
