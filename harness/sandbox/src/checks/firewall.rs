//! Check 5: the rendered nftables ruleset (NixOS's nixos-fw table, plus paranoid-egress when
//! the cache block is on), checked with `nft -c` and then loaded for real in a server network
//! namespace. Every interface the model judges SSH on (`effective.firewall.interfaces`: each one
//! the configuration names, plus one unnamed uplink) is a veth named like it, linked to a client
//! namespace; the loopback is probed from inside. Listeners stand where sshd listens
//! (`effective.sshd.listeners`: every port, on its address or on all), and every SSH port is
//! probed on every interface: what answers must be what the model says
//! (`effective.firewall.ssh[].interfaces[].reachable`), SSH must not answer outside the VPN when
//! vpn.sshOnlyOverVpn, and must answer over it. Also: every other port the configuration opens
//! is reachable where it opens it, a port nothing opens is dropped, and the binary cache ranges
//! are rejected on the way out (routed to a veth peer) when blocked.

use super::elapsed_ms;
use crate::context::{write_file, Ctx, Netns};
use crate::model::{CheckId, CheckResult, Recorder, SkipKind};
use crate::net::{self, Reach};
use crate::projection::{ports, strings, Permutation};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const TOOLS: &[&str] = &["ip", "nft"];
/// How long a dropped connection is waited for. Veths answer in well under a millisecond.
const DROP_WAIT: Duration = Duration::from_millis(1000);
/// The model's name for every interface the configuration does not name.
const UPLINK: &str = "<unnamed uplink>";

/// First usable address of a CIDR range ("151.101.0.0/16" → 151.101.0.1).
pub fn first_host(cidr: &str) -> Option<IpAddr> {
    let (addr, _) = cidr.split_once('/').unwrap_or((cidr, ""));
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some(IpAddr::V4(Ipv4Addr::from(u32::from(a) | 1))),
        IpAddr::V6(a) => Some(IpAddr::V6(Ipv6Addr::from(u128::from(a) | 1))),
    }
}

/// Can the kernel name a link `name` (dev_valid_name: 1–15 bytes, no '/', ':' or blanks)?
pub fn kernel_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// One veth from the server namespace to the client namespace, standing for one interface.
#[derive(Clone, Debug)]
pub struct Link {
    /// The configuration's (the model's) name for the interface.
    pub iface: String,
    /// The link's name in the server namespace (the same where the kernel allows).
    pub dev: String,
    /// Whether `dev` is the configuration's own name (rules matching the name then apply).
    pub named_like: bool,
    pub client_dev: String,
    pub srv4: Ipv4Addr,
    pub cli4: Ipv4Addr,
    pub srv6: Ipv6Addr,
    pub cli6: Ipv6Addr,
}

/// The links for the model's interfaces (the loopback excepted: it is probed from inside).
pub fn links(interfaces: &[String]) -> Vec<Link> {
    let mut out: Vec<Link> = vec![];
    let named: BTreeSet<&str> = interfaces.iter().map(String::as_str).collect();
    for (k, iface) in interfaces.iter().filter(|i| *i != "lo").enumerate() {
        let n = (k + 1) as u8;
        let (dev, named_like) = if iface == UPLINK {
            let d = (0..)
                .map(|i| format!("uplink{i}"))
                .find(|d| !named.contains(d.as_str()))
                .unwrap();
            (d, true)
        } else if kernel_name_ok(iface) {
            (iface.clone(), true)
        } else {
            (format!("pzsif{k}"), false)
        };
        out.push(Link {
            iface: iface.clone(),
            dev,
            named_like,
            client_dev: format!("c{k}"),
            srv4: Ipv4Addr::new(10, 77, n, 1),
            cli4: Ipv4Addr::new(10, 77, n, 2),
            srv6: Ipv6Addr::new(0xfd77, n as u16, 0, 0, 0, 0, 0, 1),
            cli6: Ipv6Addr::new(0xfd77, n as u16, 0, 0, 0, 0, 0, 2),
        });
    }
    out
}

/// One cell of the model's SSH table.
#[derive(Clone, Debug)]
pub struct SshCell {
    pub port: u16,
    pub iface: String,
    pub public: bool,
    pub reachable: bool,
}

pub fn ssh_cells(fw: &Value) -> Vec<SshCell> {
    let mut out = vec![];
    for t in fw
        .get("ssh")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(port) = t
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for i in t
            .get("interfaces")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push(SshCell {
                port,
                iface: i
                    .get("interface")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                public: i.get("public").and_then(Value::as_bool).unwrap_or(true),
                reachable: i.get("reachable").and_then(Value::as_bool).unwrap_or(false),
            });
        }
    }
    out
}

/// Where sshd listens, as the model reads `effective.sshd.listeners`.
#[derive(Clone, Debug, PartialEq)]
pub struct Listener {
    pub port: u16,
    pub address: Option<IpAddr>,
    pub iface: Option<String>,
}

pub fn listeners(p: &Permutation) -> Vec<Listener> {
    p.effective("sshd")
        .and_then(|s| s.get("listeners"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|l| {
                    let port = u16::try_from(l.get("port")?.as_u64()?).ok()?;
                    let address = l
                        .get("address")
                        .and_then(Value::as_str)
                        .map(|a| a.trim_start_matches('[').trim_end_matches(']'))
                        .filter(|a| !a.is_empty() && *a != "0.0.0.0" && *a != "::")
                        .and_then(|a| a.parse().ok());
                    let iface = l
                        .get("interface")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    Some(Listener {
                        port,
                        address,
                        iface,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Proto {
    Tcp,
    Udp,
}

/// What a probe is held to.
#[derive(Clone, Debug)]
enum Judge {
    /// A cell of the model's SSH table: answers iff the model says reachable; with
    /// sshOnlyOverVpn, never on a public interface and always on the VPN.
    Ssh {
        cell: SshCell,
        vpn_only: bool,
        vpn: bool,
    },
    /// A port the configuration opens (reachable) or nothing opens (dropped).
    Port { open: bool, why: String },
}

/// One probe: from the client side of a link (or inside the server for `lo`) to an address.
#[derive(Clone, Debug)]
struct Probe {
    /// None: the loopback, probed inside the server namespace.
    link: Option<usize>,
    proto: Proto,
    to: IpAddr,
    port: u16,
    judge: Judge,
}

/// The firewall check's applicability: Some(result) when it does not run.
fn not_run(p: &Permutation) -> Option<CheckResult> {
    let id = CheckId::Firewall;
    let fw_knob = p.knob_bool("firewall.enable");
    let fw_on = p
        .option("networking.firewall.enable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let nft_on = p
        .option("networking.nftables.enable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if p.rendered("nftables").is_some() {
        return None;
    }
    if fw_on && !nft_on {
        // The iptables backend: NixOS's firewall script is not rendered offline.
        let cells = p.effective("firewall").map(ssh_cells).unwrap_or_default();
        let unprobed: Vec<String> = cells
            .iter()
            .map(|c| {
                format!(
                    "{}/{} ({})",
                    c.port,
                    c.iface,
                    if c.reachable {
                        "model: answers"
                    } else {
                        "model: no answer"
                    }
                )
            })
            .collect();
        let what = format!(
            "iptables backend: NixOS's iptables firewall (firewall-start with extraCommands) is not rendered offline, so nothing is loaded or probed here; not probed: SSH {}, every opened port, the input policy and the cache block; the model's reading of extraCommands is the only judge (the VM tier runs the real script)",
            if unprobed.is_empty() { "(no SSH port)".to_string() } else { unprobed.join(", ") }
        );
        return Some(if fw_knob {
            CheckResult::skipped(id, SkipKind::Unsupported, format!("{what}; paranoid.firewall.enable selects nftables, and this configuration turned networking.nftables off"))
        } else {
            CheckResult::not_applicable(id, format!("{what}; paranoid.firewall.enable is off, so paranoid promises nothing about it"))
        });
    }
    if !fw_on && !fw_knob {
        return Some(CheckResult::not_applicable(
            id,
            "no packet filter in this configuration, and paranoid.firewall.enable is off",
        ));
    }
    // paranoid.firewall.enable promises a filter that is not there: probe the bare kernel.
    None
}

pub fn run(ctx: &Ctx, p: &Permutation) -> CheckResult {
    let started = Instant::now();
    let id = CheckId::Firewall;
    if let Some(r) = not_run(p) {
        return r;
    }
    let Some(fw) = p.effective("firewall") else {
        return CheckResult::not_applicable(id, "the projection carries no effective.firewall");
    };
    if let Some(r) = super::preflight(
        ctx,
        id,
        Some("creates network namespaces and loads nftables rules in them"),
        TOOLS,
    ) {
        return r;
    }
    if let Err(e) = ctx.netns_available() {
        return CheckResult::skipped(
            id,
            SkipKind::Environment,
            format!("needs network namespaces (the ruleset is loaded into a private one): {e}"),
        );
    }
    let mut rec = Recorder::new(id);
    if let Err(e) = run_inner(ctx, p, p.rendered("nftables"), fw, &mut rec) {
        rec.fail("could not run the firewall check", e);
    }
    rec.finish(
        "on every interface the model names and one unnamed uplink, SSH answers exactly where the model says and the promise allows; opened ports answer, the rest is dropped, the cache is rejected",
        elapsed_ms(started),
    )
}

fn ip(ctx: &Ctx, rec: &mut Recorder, args: &[&str]) -> Result<(), String> {
    let c = ctx.tool("ip").args(args.iter().copied());
    let o = ctx
        .run(&c, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    if o.ok() {
        Ok(())
    } else {
        rec.fail(
            "network setup failed",
            format!("`{}`: {}", c.display(), o.digest(3)),
        );
        Err(format!("`{}`: {}", c.display(), o.digest(3)))
    }
}

/// Add an address (IPv6 without duplicate address detection, which would hold it back).
fn addr(ctx: &Ctx, rec: &mut Recorder, ns: &str, dev: &str, a: &str) -> Result<(), String> {
    let nodad: &[&str] = if a.contains(':') { &["nodad"] } else { &[] };
    ip(
        ctx,
        rec,
        &[&["-n", ns, "addr", "add", a, "dev", dev][..], nodad].concat(),
    )
}

fn run_inner(
    ctx: &Ctx,
    p: &Permutation,
    ruleset: Option<&str>,
    fw: &Value,
    rec: &mut Recorder,
) -> Result<(), String> {
    let scratch = ctx.scratch("firewall").map_err(|e| e.to_string())?;
    let srv: Netns = ctx.netns().map_err(|e| e.to_string())?;
    let cli: Netns = ctx.netns().map_err(|e| e.to_string())?;
    let (s, c) = (srv.name.as_str(), cli.name.as_str());
    let file = scratch.path("ruleset.nft");
    if let Some(rules) = ruleset {
        write_file(&file, rules, 0o644).map_err(|e| e.to_string())?;
        // Static: nft's own parser and the kernel's validation, nothing loaded.
        let check = ctx
            .tool("nft")
            .in_netns(s)
            .args(["-c", "-f"])
            .arg(file.to_string_lossy());
        let o = ctx
            .run(&check, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        if !rec.step(
            "nft -c accepts the rendered ruleset",
            check.display(),
            o.digest(4),
            o.ok(),
        ) {
            return Ok(());
        }
    } else {
        rec.note("no ruleset is rendered: the kernel filters nothing (probed below as it is)");
    }
    if p.knob_bool("firewall.enable")
        && p.option("networking.firewall.enable")
            .and_then(Value::as_bool)
            == Some(false)
    {
        rec.step(
            "paranoid.firewall.enable promises a packet filter",
            "",
            "networking.firewall.enable = false: NixOS's input filter (nixos-fw) is not in the ruleset",
            false,
        );
    }

    // ---- topology: a veth per interface of the model -----------------------------------------
    let interfaces = strings(fw.get("interfaces"));
    let vpn = fw.get("vpn").and_then(Value::as_str).map(str::to_string);
    let links = links(&interfaces);
    for l in &links {
        ip(
            ctx,
            rec,
            &[
                "-n",
                s,
                "link",
                "add",
                &l.dev,
                "type",
                "veth",
                "peer",
                "name",
                &l.client_dev,
                "netns",
                c,
            ],
        )?;
        addr(ctx, rec, s, &l.dev, &format!("{}/24", l.srv4))?;
        addr(ctx, rec, s, &l.dev, &format!("{}/64", l.srv6))?;
        addr(ctx, rec, c, &l.client_dev, &format!("{}/24", l.cli4))?;
        addr(ctx, rec, c, &l.client_dev, &format!("{}/64", l.cli6))?;
        ip(ctx, rec, &["-n", s, "link", "set", &l.dev, "up"])?;
        ip(ctx, rec, &["-n", c, "link", "set", &l.client_dev, "up"])?;
        if l.iface == UPLINK {
            rec.adapt(format!("the unnamed uplink (every interface the configuration does not name) is the veth {}", l.dev));
        } else if !l.named_like {
            rec.adapt(format!("interface {} cannot be named so here (the kernel takes 1–15 bytes without / : or blanks): it is the veth {}, and rules matching its name are not probed", l.iface, l.dev));
        } else if Some(&l.iface) == vpn.as_ref() {
            rec.adapt(format!("the VPN interface {} is a veth named like it (WireGuard/tun links are not available here; nftables matches only the name)", l.iface));
        }
    }
    rec.note(format!(
        "server namespace {s}, client namespace {c}: {}; lo probed inside {s}",
        links
            .iter()
            .map(|l| format!("{} {} ↔ {} {}", l.dev, l.srv4, l.client_dev, l.cli4))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let uplink = links.iter().position(|l| l.iface == UPLINK);
    let link_of = |iface: &str| links.iter().position(|l| l.iface == iface);

    // Where sshd listens: a listener's own address goes onto its interface's veth.
    let sshd_listeners = listeners(p);
    let mut bound: Vec<(u16, IpAddr)> = vec![];
    for l in &sshd_listeners {
        match (l.address, l.iface.as_deref()) {
            (None, _) => bound.push((l.port, IpAddr::V4(Ipv4Addr::UNSPECIFIED))),
            (Some(a), _) if a.is_loopback() => bound.push((l.port, a)),
            (Some(a), iface) => {
                let k = iface
                    .and_then(link_of)
                    .or(uplink)
                    .ok_or("no link for a listener")?;
                let link = &links[k];
                let (len, dev) = if a.is_ipv4() {
                    ("32", link.dev.as_str())
                } else {
                    ("128", link.dev.as_str())
                };
                addr(ctx, rec, s, dev, &format!("{a}/{len}"))?;
                ip(
                    ctx,
                    rec,
                    &[
                        "-n",
                        c,
                        "route",
                        "add",
                        &format!("{a}/{len}"),
                        "dev",
                        &link.client_dev,
                    ],
                )?;
                rec.adapt(format!(
                    "sshd's ListenAddress {a} (port {}) is put on the veth of {}",
                    l.port, link.iface
                ));
                bound.push((l.port, a));
            }
        }
    }

    // Egress block: route the blocked ranges to the uplink's client side, where something listens.
    let block = p.knob_bool("nix.enable") && p.knob_bool("nix.blockBinaryCache");
    let ranges = strings(p.knob("nix.binaryCacheRanges"));
    let mut egress_targets: Vec<(String, IpAddr)> = vec![];
    if let (true, Some(k)) = (block, uplink) {
        let up = &links[k];
        for r in &ranges {
            let Some(a) = first_host(r) else {
                rec.note(format!("cannot parse range {r}; not probed"));
                continue;
            };
            let (via, host_len) = if a.is_ipv4() {
                (up.cli4.to_string(), 32)
            } else {
                (up.cli6.to_string(), 128)
            };
            let host = format!("{a}/{host_len}");
            let add = [
                "-n",
                c,
                "addr",
                "add",
                host.as_str(),
                "dev",
                up.client_dev.as_str(),
                "nodad",
            ];
            ip(ctx, rec, &add).or_else(|_| ip(ctx, rec, &add[..add.len() - 1]))?;
            ip(
                ctx,
                rec,
                &["-n", s, "route", "add", r, "via", &via, "dev", &up.dev],
            )?;
            egress_targets.push((r.clone(), a));
        }
    }

    super::test_panic_hook(CheckId::Firewall);
    if ruleset.is_some() {
        let load = ctx
            .tool("nft")
            .in_netns(s)
            .arg("-f")
            .arg(file.to_string_lossy());
        let o = ctx
            .run(&load, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let list = ctx.tool("nft").in_netns(s).args(["list", "tables"]);
        let tables = ctx
            .run(&list, Duration::from_secs(10))
            .map(|o| {
                o.stdout
                    .lines()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        if !rec.step(
            "the ruleset loads into the server namespace",
            load.display(),
            format!("{}; tables: {tables}", o.digest(2)),
            o.ok(),
        ) {
            return Ok(());
        }
    }

    // ---- what to probe --------------------------------------------------------------------------
    let vpn_only = p.knob_bool("vpn.sshOnlyOverVpn");
    let mut probes: Vec<Probe> = vec![];
    let cells = ssh_cells(fw);
    for cell in &cells {
        let link = if cell.iface == "lo" {
            None
        } else {
            link_of(&cell.iface)
        };
        if cell.iface != "lo" && link.is_none() {
            rec.note(format!(
                "port {} on {}: no link stands for it; not probed",
                cell.port, cell.iface
            ));
            continue;
        }
        if let Some(k) = link {
            if !links[k].named_like {
                rec.note(format!("port {} on {}: its veth cannot carry the name, so rules naming it cannot match; not probed", cell.port, cell.iface));
                continue;
            }
        }
        // The address sshd answers on there: its own on that interface, else the link's.
        let own = sshd_listeners
            .iter()
            .find(|l| {
                l.port == cell.port
                    && l.address.is_some()
                    && l.iface.as_deref() == Some(cell.iface.as_str())
            })
            .and_then(|l| l.address);
        let to = match (own, link) {
            (Some(a), _) => a,
            (None, None) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            (None, Some(k)) => IpAddr::V4(links[k].srv4),
        };
        probes.push(Probe {
            link,
            proto: Proto::Tcp,
            to,
            port: cell.port,
            judge: Judge::Ssh {
                cell: cell.clone(),
                vpn_only,
                vpn: Some(&cell.iface) == vpn.as_ref(),
            },
        });
    }
    let ssh_ports: BTreeSet<u16> = cells.iter().map(|c| c.port).collect();
    // Every other port the configuration opens, where it opens it.
    let opened =
        |k: Option<usize>, proto: Proto, port: u16, why: String, probes: &mut Vec<Probe>| {
            let Some(k) = k else { return };
            if ssh_ports.contains(&port)
                || probes
                    .iter()
                    .any(|x| x.link == Some(k) && x.proto == proto && x.port == port)
            {
                return;
            }
            probes.push(Probe {
                link: Some(k),
                proto,
                to: IpAddr::V4(links[k].srv4),
                port,
                judge: Judge::Port { open: true, why },
            });
        };
    for port in ports(p.option("networking.firewall.allowedTCPPorts")) {
        opened(
            uplink,
            Proto::Tcp,
            port,
            "opened by networking.firewall.allowedTCPPorts".into(),
            &mut probes,
        );
    }
    for port in ports(p.option("networking.firewall.allowedUDPPorts")) {
        opened(
            uplink,
            Proto::Udp,
            port,
            "opened by networking.firewall.allowedUDPPorts".into(),
            &mut probes,
        );
    }
    if let Some(ifs) = p
        .option("networking.firewall.interfaces")
        .and_then(Value::as_object)
    {
        for (name, cfg) in ifs {
            // Upstream's `default` entry is every interface: the uplink stands for them.
            let k = if name == "default" {
                uplink
            } else {
                link_of(name)
            };
            for port in ports(cfg.get("allowedTCPPorts")) {
                opened(
                    k,
                    Proto::Tcp,
                    port,
                    format!("opened on {name} by networking.firewall.interfaces"),
                    &mut probes,
                );
            }
            for port in ports(cfg.get("allowedUDPPorts")) {
                opened(
                    k,
                    Proto::Udp,
                    port,
                    format!("opened on {name} by networking.firewall.interfaces"),
                    &mut probes,
                );
            }
        }
    }
    // Input policy drop: a port nothing opens, on the uplink.
    if let Some(k) = uplink {
        let used: BTreeSet<u16> = probes.iter().map(|e| e.port).collect();
        let canary = (9000..10000).find(|p| !used.contains(p)).unwrap_or(9999);
        probes.push(Probe {
            link: Some(k),
            proto: Proto::Tcp,
            to: IpAddr::V4(links[k].srv4),
            port: canary,
            judge: Judge::Port {
                open: false,
                why: "nothing opens it (input policy drop)".into(),
            },
        });
    }

    // ---- listeners --------------------------------------------------------------------------------
    let stop = AtomicBool::new(false);
    let mut tcp: Vec<(u16, TcpListener)> = vec![];
    let mut udp: Vec<(usize, u16, UdpSocket)> = vec![];
    let mut tcp_binds: BTreeSet<(u16, IpAddr)> = bound.iter().copied().collect();
    for pr in probes
        .iter()
        .filter(|x| x.proto == Proto::Tcp && matches!(x.judge, Judge::Port { .. }))
    {
        tcp_binds.insert((pr.port, IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    }
    for (port, a) in &tcp_binds {
        // A wildcard listener covers a specific address of the same port.
        if !a.is_unspecified()
            && tcp_binds.contains(&(*port, IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
            && a.is_ipv4()
        {
            continue;
        }
        let l = net::tcp_listen(s, SocketAddr::new(*a, *port))
            .map_err(|e| format!("listen on {a}:{port} in {s}: {e}"))?;
        tcp.push((*port, l));
    }
    for pr in probes.iter().filter(|x| x.proto == Proto::Udp) {
        let k = pr.link.unwrap();
        let u = net::udp_bind(s, SocketAddr::new(IpAddr::V4(links[k].srv4), pr.port))
            .map_err(|err| format!("bind udp/{} in {s}: {err}", pr.port))?;
        u.set_read_timeout(Some(DROP_WAIT))
            .map_err(|e| e.to_string())?;
        udp.push((k, pr.port, u));
    }
    // On the client side, one dual-stack listener: the target of the link controls below and of
    // the egress probes (the blocked ranges are routed there).
    let egress_listener = net::tcp_listen(c, "[::]:443".parse().unwrap())
        .map_err(|e| format!("listen on [::]:443 in {c}: {e}"))?;

    let (link_results, outcomes, egress) = std::thread::scope(|sc| {
        for (port, l) in tcp
            .iter()
            .map(|(p, l)| (*p, l))
            .chain([(443, &egress_listener)])
        {
            let stop = &stop;
            sc.spawn(move || {
                let _ = l.set_nonblocking(true);
                while !stop.load(Ordering::SeqCst) {
                    match l.accept() {
                        Ok((mut conn, _)) => {
                            let _ = conn.write_all(format!("PZS-LISTENER {port}\n").as_bytes());
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        // Link controls: the server reaches the client over each link (its replies are
        // "established", which every ruleset admits). Until this works, a timeout proves
        // nothing about the filter.
        let mut link_results = vec![];
        for l in &links {
            let target = SocketAddr::new(IpAddr::V4(l.cli4), 443);
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut last;
            loop {
                last = net::tcp_probe(
                    s,
                    target,
                    Duration::from_millis(500),
                    Duration::from_millis(500),
                );
                if matches!(last, Ok(Reach::Open(_))) || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            link_results.push((format!("{} ({} → {}:443)", l.dev, l.srv4, l.cli4), last));
        }
        if link_results
            .iter()
            .any(|(_, r)| !matches!(r, Ok(Reach::Open(_))))
        {
            stop.store(true, Ordering::SeqCst);
            return (link_results, vec![], vec![]);
        }
        let handles: Vec<_> = probes
            .iter()
            .map(|pr| {
                let udp = &udp;
                let ns = if pr.link.is_some() { c } else { s };
                sc.spawn(move || probe(ns, pr, udp))
            })
            .collect();
        let mut eg = vec![];
        let up = uplink.map(|k| links[k].clone());
        for (range, a) in &egress_targets {
            let up = up.clone().unwrap();
            eg.push(sc.spawn(move || {
                let blocked = net::tcp_probe(
                    s,
                    SocketAddr::new(*a, 443),
                    DROP_WAIT,
                    Duration::from_millis(300),
                );
                let control_ip: IpAddr = if a.is_ipv4() {
                    IpAddr::V4(up.cli4)
                } else {
                    IpAddr::V6(up.cli6)
                };
                let control = net::tcp_probe(
                    s,
                    SocketAddr::new(control_ip, 443),
                    DROP_WAIT,
                    Duration::from_millis(300),
                );
                (range.clone(), *a, control_ip, blocked, control)
            }));
        }
        let r: Vec<(Reach, String)> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panic!("probe thread panicked")))
            .collect();
        let e: Vec<_> = eg
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| panic!("egress probe thread panicked"))
            })
            .collect();
        stop.store(true, Ordering::SeqCst);
        (link_results, r, e)
    });
    for (what, r) in &link_results {
        rec.step(
            format!("control: the link {what} carries packets (so a timeout below means a drop)"),
            format!("ip netns exec {s} <connect, retried up to 5 s>"),
            r.as_ref()
                .map(|x| x.describe())
                .unwrap_or_else(|e| e.to_string()),
            matches!(r, Ok(Reach::Open(_))),
        );
    }
    for (pr, (reach, text)) in probes.iter().zip(&outcomes) {
        let (on, from) = match pr.link {
            Some(k) => (
                links[k].iface.clone(),
                format!("ip netns exec {c} (via {})", links[k].client_dev),
            ),
            None => ("lo".to_string(), format!("ip netns exec {s}")),
        };
        let proto = if pr.proto == Proto::Tcp { "tcp" } else { "udp" };
        let cmd = if pr.proto == Proto::Tcp {
            format!(
                "{from} <connect {}> (timeout {} ms)",
                SocketAddr::new(pr.to, pr.port),
                DROP_WAIT.as_millis()
            )
        } else {
            format!(
                "{from} <send a datagram to {}>; listener in {s} waits {} ms",
                SocketAddr::new(pr.to, pr.port),
                DROP_WAIT.as_millis()
            )
        };
        let answered = match reach {
            Reach::Open(b) => b.contains("PZS-LISTENER") || b.starts_with("datagram"),
            _ => false,
        };
        match &pr.judge {
            Judge::Ssh {
                cell,
                vpn_only,
                vpn,
            } => {
                let kind = if *vpn {
                    "the VPN"
                } else if cell.public {
                    "public"
                } else {
                    "loopback"
                };
                rec.step(
                    format!(
                        "model agrees with the packet filter: SSH port {} on {on} ({kind}) {}",
                        pr.port,
                        if cell.reachable {
                            "answers"
                        } else {
                            "does not answer"
                        }
                    ),
                    cmd.clone(),
                    text.clone(),
                    answered == cell.reachable,
                );
                if *vpn_only && cell.public && answered {
                    rec.step(
                        format!(
                            "SSH port {} does not answer on {on} (public) with vpn.sshOnlyOverVpn",
                            pr.port
                        ),
                        cmd.clone(),
                        text.clone(),
                        false,
                    );
                }
                if *vpn_only && *vpn {
                    rec.step(
                        format!("SSH port {} answers over the VPN ({on}): the admin's way in with vpn.sshOnlyOverVpn", pr.port),
                        cmd,
                        text.clone(),
                        answered,
                    );
                }
            }
            Judge::Port { open, why } => {
                rec.step(
                    format!(
                        "{proto}/{} on {on} is {} ({why})",
                        pr.port,
                        if *open { "reachable" } else { "dropped" }
                    ),
                    cmd,
                    text.clone(),
                    if *open {
                        answered
                    } else {
                        matches!(reach, Reach::TimedOut | Reach::Refused(_))
                    },
                );
            }
        }
    }
    for (range, a, control_ip, blocked, control) in egress {
        let blocked_ok = matches!(blocked, Ok(Reach::Refused(_)) | Ok(Reach::TimedOut));
        let control_ok = matches!(control, Ok(Reach::Open(_)));
        rec.step(
            format!("egress to {range} is rejected (nix.blockBinaryCache), while the same path to an unblocked address works"),
            format!("ip netns exec {s} <connect {a}:443>; then <connect {control_ip}:443> (control)"),
            format!(
                "{a}:443: {}; control {control_ip}:443: {}",
                blocked.map(|r| r.describe()).unwrap_or_else(|e| e.to_string()),
                control.map(|r| r.describe()).unwrap_or_else(|e| e.to_string())
            ),
            blocked_ok && control_ok,
        );
    }
    if block && uplink.is_none() {
        rec.note("the cache block was not probed: the model names no uplink");
    }
    if !egress_targets.is_empty() {
        let l = ctx
            .tool("nft")
            .in_netns(s)
            .args(["list", "table", "inet", "paranoid-egress"]);
        if let Ok(o) = ctx.run(&l, Duration::from_secs(10)) {
            let counters: Vec<&str> = o
                .stdout
                .lines()
                .filter(|x| x.contains("counter"))
                .map(str::trim)
                .collect();
            rec.note(format!("{}: {}", l.display(), counters.join(" | ")));
        }
    }
    drop(scratch);
    Ok(())
}

/// Probe one port from `ns`. Returns what happened (a delivered datagram reads as Open) and its
/// description.
fn probe(ns: &str, pr: &Probe, udp: &[(usize, u16, UdpSocket)]) -> (Reach, String) {
    let open_expected = match &pr.judge {
        Judge::Ssh { cell, .. } => cell.reachable,
        Judge::Port { open, .. } => *open,
    };
    match pr.proto {
        Proto::Tcp => {
            // A port expected open gets time for one SYN retransmission (1 s) on a busy machine.
            let wait = if open_expected {
                Duration::from_secs(3)
            } else {
                DROP_WAIT
            };
            match net::tcp_probe(
                ns,
                SocketAddr::new(pr.to, pr.port),
                wait,
                Duration::from_secs(2),
            ) {
                Ok(r) => {
                    let d = r.describe();
                    (r, d)
                }
                Err(err) => (
                    Reach::Refused(err.to_string()),
                    format!("probe error: {err}"),
                ),
            }
        }
        Proto::Udp => {
            let token = format!("pzs-{}-{}", pr.port, crate::context::random_hex(8));
            let Some((_, _, sock)) = udp
                .iter()
                .find(|(k, p, _)| Some(*k) == pr.link && *p == pr.port)
            else {
                return (Reach::Refused("no listener".into()), "no listener".into());
            };
            let client = net::in_netns(ns, || UdpSocket::bind("0.0.0.0:0"));
            let mut got = false;
            let mut sent = Ok(0);
            // A datagram can be lost on a busy machine: an open port gets three tries.
            for _ in 0..(if open_expected { 3 } else { 1 }) {
                sent = client
                    .as_ref()
                    .map_err(|e| std::io::Error::new(e.kind(), e.to_string()))
                    .and_then(|u| u.send_to(token.as_bytes(), SocketAddr::new(pr.to, pr.port)));
                let deadline = Instant::now() + DROP_WAIT;
                let mut buf = [0u8; 128];
                while Instant::now() < deadline {
                    match sock.recv_from(&mut buf) {
                        Ok((n, _)) if String::from_utf8_lossy(&buf[..n]) == token => {
                            got = true;
                            break;
                        }
                        Ok(_) => continue,
                        Err(_) => break,
                    }
                }
                if got {
                    break;
                }
            }
            match (&sent, got) {
                (Err(err), _) => (
                    Reach::Refused(err.to_string()),
                    format!("send failed: {err}"),
                ),
                (Ok(_), true) => (
                    Reach::Open(format!("datagram {token}")),
                    format!("datagram {token} delivered"),
                ),
                (Ok(_), false) => (
                    Reach::TimedOut,
                    format!(
                        "datagram {token} not delivered within {} ms: dropped",
                        DROP_WAIT.as_millis()
                    ),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_host_of_a_range() {
        assert_eq!(
            first_host("151.101.0.0/16"),
            Some("151.101.0.1".parse().unwrap())
        );
        assert_eq!(
            first_host("2a04:4e42::/32"),
            Some("2a04:4e42::1".parse().unwrap())
        );
    }

    #[test]
    fn every_interface_gets_a_link_named_like_it_where_the_kernel_allows() {
        let ifs: Vec<String> = [
            "enp1s0",
            "wg0",
            "lo",
            "a-name-far-too-long",
            "<unnamed uplink>",
            "uplink0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let l = links(&ifs);
        let devs: Vec<(&str, &str, bool)> = l
            .iter()
            .map(|l| (l.iface.as_str(), l.dev.as_str(), l.named_like))
            .collect();
        assert_eq!(
            devs,
            vec![
                ("enp1s0", "enp1s0", true),
                ("wg0", "wg0", true),
                ("a-name-far-too-long", "pzsif2", false),
                ("<unnamed uplink>", "uplink1", true),
                ("uplink0", "uplink0", true),
            ]
        );
        assert_eq!(l[1].srv4, Ipv4Addr::new(10, 77, 2, 1));
        assert!(kernel_name_ok("tailscale0") && !kernel_name_ok("a/b") && !kernel_name_ok(""));
    }
}
