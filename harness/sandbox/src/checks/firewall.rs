//! Check 5: the rendered nftables ruleset (NixOS's nixos-fw table, plus paranoid-egress when
//! the cache block is on), checked with `nft -c` and then loaded for real in a network
//! namespace with a public veth and a veth named like the VPN interface. Probes from a client
//! namespace prove: port 22 dropped from the public side and open from the VPN side when
//! sshOnlyOverVpn; a port nothing opens dropped; every port the configuration opens reachable;
//! the binary cache ranges rejected on the way out (routed to a veth peer) when blocked.

use super::elapsed_ms;
use crate::context::{write_file, Ctx, Netns};
use crate::model::{CheckId, CheckResult, Recorder, SkipKind};
use crate::net::{self, Reach};
use crate::projection::{ports, strings, Permutation};
use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const TOOLS: &[&str] = &["ip", "nft"];
/// How long a dropped connection is waited for. Veths answer in well under a millisecond.
const DROP_WAIT: Duration = Duration::from_millis(1000);
const SRV_PUB: &str = "10.77.1.1";
const CLI_PUB: &str = "10.77.1.2";
const SRV_VPN: &str = "100.64.77.1";
const CLI_VPN: &str = "100.64.77.2";
const SRV_PUB6: &str = "fd77:1::1";
const CLI_PUB6: &str = "fd77:1::2";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Public,
    Vpn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Proto {
    Tcp,
    Udp,
}

/// One reachability expectation, with why it is expected.
#[derive(Clone, Debug)]
struct Expect {
    side: Side,
    proto: Proto,
    port: u16,
    open: bool,
    why: String,
}

/// First usable address of a CIDR range ("151.101.0.0/16" → 151.101.0.1).
pub fn first_host(cidr: &str) -> Option<IpAddr> {
    let (addr, _) = cidr.split_once('/').unwrap_or((cidr, ""));
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some(IpAddr::V4(Ipv4Addr::from(u32::from(a) | 1))),
        IpAddr::V6(a) => Some(IpAddr::V6(Ipv6Addr::from(u128::from(a) | 1))),
    }
}

fn expectations(p: &Permutation, rec: &mut Recorder, vpn: Option<&str>) -> Vec<Expect> {
    let mut out: Vec<Expect> = vec![];
    let sshd = p
        .option("services.openssh.enable")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let ssh_ports = if sshd {
        ports(p.option("services.openssh.ports"))
    } else {
        vec![]
    };
    let only_vpn = p.knob_bool("vpn.sshOnlyOverVpn");
    let global_tcp = ports(p.option("networking.firewall.allowedTCPPorts"));
    let global_udp = ports(p.option("networking.firewall.allowedUDPPorts"));
    // Promises first; a port the config opens that a promise closes stays expected closed.
    if only_vpn && vpn.is_some() {
        for port in &ssh_ports {
            out.push(Expect {
                side: Side::Public,
                proto: Proto::Tcp,
                port: *port,
                open: false,
                why: "SSH only over the VPN (vpn.sshOnlyOverVpn)".into(),
            });
            out.push(Expect {
                side: Side::Vpn,
                proto: Proto::Tcp,
                port: *port,
                open: true,
                why: "SSH over the VPN interface".into(),
            });
        }
    }
    let promised_closed: BTreeSet<(Side, u16)> = out
        .iter()
        .filter(|e| !e.open)
        .map(|e| (e.side, e.port))
        .collect();
    for port in &global_tcp {
        if promised_closed.contains(&(Side::Public, *port)) {
            rec.note(format!("tcp/{port} is in networking.firewall.allowedTCPPorts but the promise above keeps it closed"));
            continue;
        }
        out.push(Expect {
            side: Side::Public,
            proto: Proto::Tcp,
            port: *port,
            open: true,
            why: "opened by networking.firewall.allowedTCPPorts".into(),
        });
    }
    for port in &global_udp {
        out.push(Expect {
            side: Side::Public,
            proto: Proto::Udp,
            port: *port,
            open: true,
            why: "opened by networking.firewall.allowedUDPPorts".into(),
        });
    }
    if let (Some(ifname), Some(ifs)) = (
        vpn,
        p.option("networking.firewall.interfaces")
            .and_then(|v| v.as_object()),
    ) {
        for (name, cfg) in ifs {
            if name != ifname {
                rec.note(format!("ports opened on interface {name} not probed (only the public side and {ifname} exist here)"));
                continue;
            }
            for port in ports(cfg.get("allowedTCPPorts")) {
                if !out
                    .iter()
                    .any(|e| e.side == Side::Vpn && e.proto == Proto::Tcp && e.port == port)
                {
                    out.push(Expect {
                        side: Side::Vpn,
                        proto: Proto::Tcp,
                        port,
                        open: true,
                        why: format!("opened on {name}"),
                    });
                }
            }
            for port in ports(cfg.get("allowedUDPPorts")) {
                out.push(Expect {
                    side: Side::Vpn,
                    proto: Proto::Udp,
                    port,
                    open: true,
                    why: format!("opened on {name}"),
                });
            }
        }
    }
    // Input policy drop: a port nothing opens.
    let used: BTreeSet<u16> = out
        .iter()
        .map(|e| e.port)
        .chain(ssh_ports.iter().copied())
        .collect();
    let canary = (9000..10000).find(|p| !used.contains(p)).unwrap_or(9999);
    out.push(Expect {
        side: Side::Public,
        proto: Proto::Tcp,
        port: canary,
        open: false,
        why: "nothing opens it (input policy drop)".into(),
    });
    out
}

pub fn run(ctx: &Ctx, p: &Permutation) -> CheckResult {
    let started = Instant::now();
    let id = CheckId::Firewall;
    let fw_knob = p.knob_bool("firewall.enable");
    let Some(ruleset) = p.rendered("nftables") else {
        let fw_on = p
            .option("networking.firewall.enable")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        return if fw_knob && fw_on {
            CheckResult::skipped(
                id,
                SkipKind::Unsupported,
                "iptables backend: this configuration turned networking.nftables off, but paranoid's firewall knob selects nftables and only its rules are rendered",
            )
        } else if fw_on {
            CheckResult::not_applicable(
                id,
                "iptables backend (paranoid.firewall.enable is off; paranoid's firewall knob is what selects nftables): NixOS's iptables rules are not rendered in the projection, and paranoid promises nothing about them",
            )
        } else {
            CheckResult::not_applicable(id, "no packet filter in this configuration")
        };
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
    if let Err(e) = run_inner(ctx, p, ruleset, &mut rec) {
        rec.fail("could not run the firewall check", e);
    }
    rec.finish(
        "the loaded ruleset drops, admits and rejects as promised",
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

/// A veth pair from the server namespace to the client namespace, each end given its
/// addresses and brought up. Each side is (namespace, interface, addresses).
fn veth(
    ctx: &Ctx,
    rec: &mut Recorder,
    server: (&str, &str, &[&str]),
    client: (&str, &str, &[&str]),
) -> Result<(), String> {
    let ((s, s_if, _), (c, c_if, _)) = (server, client);
    ip(
        ctx,
        rec,
        &[
            "-n", s, "link", "add", s_if, "type", "veth", "peer", "name", c_if, "netns", c,
        ],
    )?;
    for (ns, dev, addrs) in [server, client] {
        for addr in addrs {
            // IPv6 without duplicate address detection, which would hold the address back.
            let nodad: &[&str] = if addr.contains(':') { &["nodad"] } else { &[] };
            ip(
                ctx,
                rec,
                &[&["-n", ns, "addr", "add", addr, "dev", dev][..], nodad].concat(),
            )?;
        }
    }
    for (ns, dev, _) in [server, client] {
        ip(ctx, rec, &["-n", ns, "link", "set", dev, "up"])?;
    }
    Ok(())
}

fn run_inner(ctx: &Ctx, p: &Permutation, ruleset: &str, rec: &mut Recorder) -> Result<(), String> {
    let scratch = ctx.scratch("firewall").map_err(|e| e.to_string())?;
    let file = scratch.path("ruleset.nft");
    write_file(&file, ruleset, 0o644).map_err(|e| e.to_string())?;
    let srv: Netns = ctx.netns().map_err(|e| e.to_string())?;
    let cli: Netns = ctx.netns().map_err(|e| e.to_string())?;
    let (s, c) = (srv.name.as_str(), cli.name.as_str());

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

    let vpn_on = p.knob_bool("vpn.tailscale.enable") || p.knob_bool("vpn.sshOnlyOverVpn");
    let vpn_if = vpn_on.then(|| {
        p.knob_str("vpn.interface")
            .unwrap_or("tailscale0")
            .to_string()
    });
    let (srv_pub, srv_pub6, cli_pub, cli_pub6) = (
        format!("{SRV_PUB}/24"),
        format!("{SRV_PUB6}/64"),
        format!("{CLI_PUB}/24"),
        format!("{CLI_PUB6}/64"),
    );
    veth(
        ctx,
        rec,
        (s, "pub0", &[&srv_pub, &srv_pub6]),
        (c, "pub-c", &[&cli_pub, &cli_pub6]),
    )?;
    if let Some(v) = &vpn_if {
        let (srv_vpn, cli_vpn) = (format!("{SRV_VPN}/24"), format!("{CLI_VPN}/24"));
        veth(ctx, rec, (s, v, &[&srv_vpn]), (c, "vpn-c", &[&cli_vpn]))?;
        rec.adapt(format!("the VPN interface {v} is a veth named like it (WireGuard/tun links are not available here; nftables matches only the name)"));
    }
    rec.note(format!(
        "server namespace {s}: pub0 {SRV_PUB}{}; client namespace {c}: pub-c {CLI_PUB}{}",
        vpn_if
            .as_ref()
            .map(|v| format!(", {v} {SRV_VPN}"))
            .unwrap_or_default(),
        if vpn_if.is_some() {
            format!(", vpn-c {CLI_VPN}")
        } else {
            String::new()
        }
    ));

    // Egress block: route the blocked ranges to the client side, where something listens.
    let block = p.knob_bool("nix.enable") && p.knob_bool("nix.blockBinaryCache");
    let ranges = strings(p.knob("nix.binaryCacheRanges"));
    let mut egress_targets: Vec<(String, IpAddr)> = vec![];
    if block {
        for r in &ranges {
            let Some(addr) = first_host(r) else {
                rec.note(format!("cannot parse range {r}; not probed"));
                continue;
            };
            let (via, host_len) = if addr.is_ipv4() {
                (CLI_PUB, 32)
            } else {
                (CLI_PUB6, 128)
            };
            // nodad where the kernel supports it (IPv6 duplicate address detection would
            // otherwise delay the address); plain where it refuses the flag.
            let host = format!("{addr}/{host_len}");
            let add = [
                "-n",
                c,
                "addr",
                "add",
                host.as_str(),
                "dev",
                "pub-c",
                "nodad",
            ];
            ip(ctx, rec, &add).or_else(|_| ip(ctx, rec, &add[..add.len() - 1]))?;
            ip(
                ctx,
                rec,
                &["-n", s, "route", "add", r, "via", via, "dev", "pub0"],
            )?;
            egress_targets.push((r.clone(), addr));
        }
    }

    super::test_panic_hook(CheckId::Firewall);
    // Load for real.
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

    let exps = expectations(p, rec, vpn_if.as_deref());
    // Listeners in the server namespace (and port 443 on the client side for egress probes).
    let stop = AtomicBool::new(false);
    let mut tcp: Vec<(u16, TcpListener)> = vec![];
    let mut udp: Vec<(Side, u16, UdpSocket)> = vec![];
    for port in exps
        .iter()
        .filter(|e| e.proto == Proto::Tcp)
        .map(|e| e.port)
        .collect::<BTreeSet<_>>()
    {
        let l = net::tcp_listen(s, SocketAddr::from(([0, 0, 0, 0], port)))
            .map_err(|e| format!("listen on tcp/{port} in {s}: {e}"))?;
        tcp.push((port, l));
    }
    for e in exps.iter().filter(|e| e.proto == Proto::Udp) {
        let bind = match e.side {
            Side::Public => SRV_PUB,
            Side::Vpn => SRV_VPN,
        };
        let u = net::udp_bind(s, SocketAddr::new(bind.parse().unwrap(), e.port))
            .map_err(|err| format!("bind udp/{} in {s}: {err}", e.port))?;
        u.set_read_timeout(Some(DROP_WAIT))
            .map_err(|e| e.to_string())?;
        udp.push((e.side, e.port, u));
    }
    // On the client side, one dual-stack listener: the target of the link controls below and of
    // the egress probes (the blocked ranges are routed there).
    let egress_listeners: Vec<TcpListener> = vec![net::tcp_listen(c, "[::]:443".parse().unwrap())
        .map_err(|e| format!("listen on [::]:443 in {c}: {e}"))?];

    let results = std::thread::scope(|sc| {
        // Accept loops answer with a banner naming the port.
        for (port, l) in tcp
            .iter()
            .map(|(p, l)| (*p, l))
            .chain(egress_listeners.iter().map(|l| (443, l)))
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
        let mut links = vec![(format!("public link ({SRV_PUB} → {CLI_PUB}:443)"), CLI_PUB)];
        if let Some(v) = &vpn_if {
            links.push((format!("VPN link {v} ({SRV_VPN} → {CLI_VPN}:443)"), CLI_VPN));
        }
        let mut link_results = vec![];
        for (what, addr) in links {
            let target = SocketAddr::new(addr.parse().unwrap(), 443);
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
            link_results.push((what, last));
        }
        if link_results
            .iter()
            .any(|(_, r)| !matches!(r, Ok(Reach::Open(_))))
        {
            stop.store(true, Ordering::SeqCst);
            return (link_results, vec![], vec![]);
        }
        let mut handles = vec![];
        for e in &exps {
            let udp = &udp;
            handles.push(sc.spawn(move || probe(c, e, udp)));
        }
        let mut eg = vec![];
        for (range, addr) in &egress_targets {
            eg.push(sc.spawn(move || {
                let blocked = net::tcp_probe(
                    s,
                    SocketAddr::new(*addr, 443),
                    DROP_WAIT,
                    Duration::from_millis(300),
                );
                let control_ip: IpAddr = if addr.is_ipv4() {
                    CLI_PUB.parse().unwrap()
                } else {
                    CLI_PUB6.parse().unwrap()
                };
                let control = net::tcp_probe(
                    s,
                    SocketAddr::new(control_ip, 443),
                    DROP_WAIT,
                    Duration::from_millis(300),
                );
                (range.clone(), *addr, control_ip, blocked, control)
            }));
        }
        let r: Vec<(Expect, String, bool)> = handles
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
    let (links, probes, egress) = results;
    for (what, r) in &links {
        rec.step(
            format!("control: the {what} carries packets (so a timeout below means a drop)"),
            format!("ip netns exec {s} <connect, retried up to 5 s>"),
            r.as_ref()
                .map(|x| x.describe())
                .unwrap_or_else(|e| e.to_string()),
            matches!(r, Ok(Reach::Open(_))),
        );
    }
    for (e, outcome, ok) in probes {
        let (from, to) = match e.side {
            Side::Public => (format!("public side ({CLI_PUB})"), SRV_PUB),
            Side::Vpn => (
                format!(
                    "VPN side ({CLI_VPN} via {})",
                    vpn_if.clone().unwrap_or_default()
                ),
                SRV_VPN,
            ),
        };
        let proto = if e.proto == Proto::Tcp { "tcp" } else { "udp" };
        let cmd = if e.proto == Proto::Tcp {
            format!(
                "ip netns exec {c} <connect {to}:{}> (timeout {} ms)",
                e.port,
                DROP_WAIT.as_millis()
            )
        } else {
            format!(
                "ip netns exec {c} <send a datagram to {to}:{}>; listener in {s} waits {} ms",
                e.port,
                DROP_WAIT.as_millis()
            )
        };
        rec.step(
            format!(
                "{proto}/{} from the {from} is {} ({})",
                e.port,
                if e.open { "reachable" } else { "dropped" },
                e.why
            ),
            cmd,
            outcome,
            ok,
        );
    }
    for (range, addr, control_ip, blocked, control) in egress {
        let blocked_ok = matches!(blocked, Ok(Reach::Refused(_)) | Ok(Reach::TimedOut));
        let control_ok = matches!(control, Ok(Reach::Open(_)));
        rec.step(
            format!("egress to {range} is rejected (nix.blockBinaryCache), while the same path to an unblocked address works"),
            format!("ip netns exec {s} <connect {addr}:443>; then <connect {control_ip}:443> (control)"),
            format!(
                "{addr}:443: {}; control {control_ip}:443: {}",
                blocked.map(|r| r.describe()).unwrap_or_else(|e| e.to_string()),
                control.map(|r| r.describe()).unwrap_or_else(|e| e.to_string())
            ),
            blocked_ok && control_ok,
        );
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

/// Probe one expectation from the client namespace. Returns (expectation, outcome, ok).
fn probe(cli: &str, e: &Expect, udp: &[(Side, u16, UdpSocket)]) -> (Expect, String, bool) {
    let to: IpAddr = match e.side {
        Side::Public => SRV_PUB.parse().unwrap(),
        Side::Vpn => SRV_VPN.parse().unwrap(),
    };
    match e.proto {
        Proto::Tcp => {
            // A port expected open gets time for one SYN retransmission (1 s) on a busy machine.
            let wait = if e.open {
                Duration::from_secs(3)
            } else {
                DROP_WAIT
            };
            let r = net::tcp_probe(
                cli,
                SocketAddr::new(to, e.port),
                wait,
                Duration::from_secs(2),
            );
            let (open, text) = match &r {
                Ok(Reach::Open(b)) => (
                    b.contains("PZS-LISTENER"),
                    Reach::Open(b.clone()).describe(),
                ),
                Ok(other) => (false, other.describe()),
                Err(err) => (false, format!("probe error: {err}")),
            };
            let blocked = matches!(r, Ok(Reach::TimedOut) | Ok(Reach::Refused(_)));
            let ok = if e.open { open } else { blocked };
            (e.clone(), text, ok)
        }
        Proto::Udp => {
            let token = format!("pzs-{}-{}", e.port, crate::context::random_hex(8));
            let Some((_, _, sock)) = udp.iter().find(|(s, p, _)| *s == e.side && *p == e.port)
            else {
                return (e.clone(), "no listener".into(), false);
            };
            let client = net::in_netns(cli, || UdpSocket::bind("0.0.0.0:0"));
            let mut got = false;
            let mut sent = Ok(0);
            // A datagram can be lost on a busy machine: an open port gets three tries.
            for _ in 0..(if e.open { 3 } else { 1 }) {
                sent = client
                    .as_ref()
                    .map_err(|e| std::io::Error::new(e.kind(), e.to_string()))
                    .and_then(|u| u.send_to(token.as_bytes(), SocketAddr::new(to, e.port)));
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
            let text = match (&sent, got) {
                (Err(err), _) => format!("send failed: {err}"),
                (Ok(_), true) => format!("datagram {token} delivered"),
                (Ok(_), false) => format!(
                    "datagram {token} not delivered within {} ms: dropped",
                    DROP_WAIT.as_millis()
                ),
            };
            let ok = sent.is_ok() && got == e.open;
            (e.clone(), text, ok)
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
}
