//! The watcher against the real kernel (root, audit available; anything else fails loudly).
//! Each test takes the cross-process audit lock, runs a private auditd when none is registered,
//! adds only its own uid-scoped rule with its own key, and puts everything back.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use support::*;

const AUID: u32 = 4242;

fn key() -> String {
    format!("pexw_{}", random_hex(4))
}

#[test]
fn a_binary_copied_to_a_temp_dir_alerts_within_a_second_with_its_fields() {
    let s = AuditSession::start();
    let user = User::create();
    let k = key();
    let mut w = Watcher::start(s.dir.path(), &k, &["--status-interval", "0"]);
    let _rule = ExecRule::add(user.uid, &k);
    let bin = s.path("drop/payload");
    foreign_binary(&bin);
    let marker = format!("marker-{}", random_hex(4));
    let started = Instant::now();
    let mut child = user.spawn(AUID, bin.to_str().unwrap(), &[&marker, "two words"], s.dir.path());
    let pid = child.id().to_string();
    assert!(child.wait().unwrap().success());
    let e = w
        .wait_for(Duration::from_secs(5), |e| is_kind(e, "foreign-exec"))
        .unwrap_or_else(|| panic!("no alert; the watcher said: {:#?}", w.seen));
    let latency = started.elapsed();
    assert!(latency < Duration::from_secs(1), "the alert took {latency:?}");
    let exe = bin.to_str().unwrap();
    assert_eq!(e["PRIORITY"], "1", "{e:#?}");
    assert_eq!(e["MESSAGE_ID"], "bd92ce3a861448b3bece766c0f9f2d0a");
    assert_eq!(e["EXECWATCH_EXE"], exe);
    assert_eq!(e["EXECWATCH_TARGET"], exe);
    assert_eq!(e["EXECWATCH_REASON"], "executable");
    let argv: Vec<String> = serde_json::from_str(&e["EXECWATCH_ARGV"]).unwrap();
    assert_eq!(argv, vec![exe.to_string(), marker.clone(), "two words".into()]);
    assert_eq!(e["EXECWATCH_PID"], pid);
    assert_eq!(e["EXECWATCH_PPID"], std::process::id().to_string());
    assert_eq!(e["EXECWATCH_UID"], user.uid.to_string());
    assert_eq!(e["EXECWATCH_AUID"], AUID.to_string());
    assert!(e["EXECWATCH_SESSION"].parse::<u32>().unwrap() < u32::MAX, "a session was assigned: {e:#?}");
    assert_eq!(e["EXECWATCH_CWD"], s.dir.path().to_str().unwrap());
    assert_eq!(e["EXECWATCH_RESULT"], "success");
    assert_eq!(e["EXECWATCH_AUDIT_KEY"], k);
    // The parent is this test process, which the watcher knows from /proc.
    assert_eq!(e["EXECWATCH_PARENT_EXE"], std::fs::read_link("/proc/self/exe").unwrap().to_str().unwrap());
    assert!(e["MESSAGE"].contains(exe) && e["MESSAGE"].contains("login uid 4242"), "{}", e["MESSAGE"]);
    // The JSON line carries the same.
    let json = w
        .lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(&l).unwrap())
        .find(|j| j["kind"] == "foreign-exec")
        .unwrap();
    assert_eq!(json["exec"]["exe"], exe);
    assert_eq!(json["exec"]["auid"], AUID);
    assert_eq!(json["exec"]["argv"][1], marker.as_str());
}

#[test]
fn an_allowed_prefix_produces_nothing_while_a_foreign_one_still_alerts() {
    let s = AuditSession::start();
    let user = User::create();
    let k = key();
    let allowed_dir = s.path("opt-app");
    let mut w = Watcher::start(
        s.dir.path(),
        &k,
        &["--status-interval", "0", "--allow", allowed_dir.to_str().unwrap()],
    );
    let _rule = ExecRule::add(user.uid, &k);
    let allowed = allowed_dir.join("bin/tool");
    foreign_binary(&allowed);
    // A sibling whose name shares the prefix's text is not under it.
    let control = s.path("opt-application/bin/tool");
    foreign_binary(&control);
    assert!(user.spawn(AUID, allowed.to_str().unwrap(), &[], s.dir.path()).wait().unwrap().success());
    assert!(user.spawn(AUID, control.to_str().unwrap(), &[], s.dir.path()).wait().unwrap().success());
    // Events are judged in order: once the control's alert is here, the allowed exec was judged.
    let e = w
        .wait_for(Duration::from_secs(5), |e| is_kind(e, "foreign-exec"))
        .unwrap_or_else(|| panic!("the control exec raised no alert: {:#?}", w.seen));
    assert_eq!(e["EXECWATCH_EXE"], control.to_str().unwrap(), "the allowed prefix alerted: {e:#?}");
    assert!(w.wait_for(Duration::from_millis(500), |e| is_kind(e, "foreign-exec")).is_none());
}

#[test]
fn scripts_interpreters_and_the_loader_are_judged_by_what_they_run() {
    let s = AuditSession::start();
    let user = User::create();
    let k = key();
    let mut w = Watcher::start(s.dir.path(), &k, &["--status-interval", "0"]);
    let _rule = ExecRule::add(user.uid, &k);
    let script = s.path("drop/x.sh");
    foreign_binary(&s.path("drop/t"));
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let drop_dir = s.path("drop");
    let cases: [(&str, &[&str], &str, &str); 3] = [
        // A #! script: exe is /usr/bin/dash (allowed here), the script is not.
        ("./x.sh", &[], "script", "/x.sh"),
        // `sh ./x.sh`: only argv says which script runs.
        ("/bin/sh", &["./x.sh"], "interpreter-argument", "/x.sh"),
        // ld.so running a program it maps itself.
        ("/lib64/ld-linux-x86-64.so.2", &["./t"], "loader-argument", "/t"),
    ];
    for (prog, args, reason, suffix) in cases {
        assert!(user.spawn(AUID, prog, args, &drop_dir).wait().unwrap().success(), "{prog} {args:?}");
        let e = w
            .wait_for(Duration::from_secs(5), |e| is_kind(e, "foreign-exec"))
            .unwrap_or_else(|| panic!("{prog} {args:?}: no alert: {:#?}", w.seen));
        assert_eq!(e["EXECWATCH_REASON"], reason, "{prog}: {e:#?}");
        assert_eq!(e["EXECWATCH_TARGET"], format!("{}{suffix}", drop_dir.display()), "{e:#?}");
    }
}

#[test]
fn an_exec_refused_on_a_noexec_mount_alerts() {
    let s = AuditSession::start();
    let user = User::create();
    let k = key();
    let mut w = Watcher::start(s.dir.path(), &k, &["--status-interval", "0"]);
    let _rule = ExecRule::add(user.uid, &k);
    let nx = s.path("nx");
    std::fs::create_dir(&nx).unwrap();
    // A tmpfs mounted noexec in a private mount namespace (the host never sees it); inside
    // it, root copies a binary and the throwaway user (with a login uid) tries to run it.
    let script = format!(
        "mount -t tmpfs -o noexec,mode=755 pexw {nx} && cp /bin/true {nx}/t && chmod 755 {nx}/t && echo {AUID} > /proc/self/loginuid && exec setpriv --reuid={} --regid={} --clear-groups {nx}/t",
        user.uid,
        user.gid,
        nx = nx.display()
    );
    let o = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(126), "the exec was not refused: {err}");
    assert!(err.contains("Permission denied"), "{err}");
    let e = w
        .wait_for(Duration::from_secs(5), |e| is_kind(e, "foreign-exec"))
        .unwrap_or_else(|| panic!("no alert for the refused exec: {:#?}", w.seen));
    assert_eq!(e["EXECWATCH_REASON"], "refused-exec", "{e:#?}");
    assert_eq!(e["EXECWATCH_RESULT"], "EACCES");
    assert_eq!(e["EXECWATCH_TARGET"], format!("{}/t", nx.display()));
    assert_eq!(e["EXECWATCH_AUID"], AUID.to_string());
    assert_eq!(e["PRIORITY"], "1");
}

#[test]
fn removing_the_rules_or_switching_audit_off_alerts() {
    let s = AuditSession::start();
    let user = User::create();
    let k = key();
    s.set_enabled(1);
    let rule = ExecRule::add(user.uid, &k);
    let mut w = Watcher::start(s.dir.path(), &k, &["--status-interval", "1"]);
    // Let the first poll see the rule and audit on.
    std::thread::sleep(Duration::from_millis(1500));
    let (ok, out) = rule.delete();
    assert!(ok, "{out}");
    let record = w.wait_for(Duration::from_secs(3), |e| finding(e) == "rule-removed");
    let poll = w.wait_for(Duration::from_secs(3), |e| finding(e) == "rules-missing");
    let (record, poll) = (record.unwrap_or_else(|| panic!("{:#?}", w.seen)), poll.unwrap_or_else(|| panic!("{:#?}", w.seen)));
    assert_eq!(record["PRIORITY"], "1");
    assert!(record["MESSAGE"].contains(&k), "{}", record["MESSAGE"]);
    assert_eq!(poll["PRIORITY"], "1");

    s.set_enabled(0);
    let off = w
        .wait_for(Duration::from_secs(3), |e| finding(e) == "audit-disabled")
        .unwrap_or_else(|| panic!("no alert for auditctl -e 0: {:#?}", w.seen));
    assert_eq!(off["PRIORITY"], "1");
    assert_eq!(off["EXECWATCH_RECORD_AUDIT_ENABLED"], "0", "the CONFIG_CHANGE record: {off:#?}");
    let polled = w.wait_for(Duration::from_secs(3), |e| finding(e) == "audit-disabled");
    assert!(polled.is_some(), "the poll did not see audit off: {:#?}", w.seen);
    s.set_enabled(1);
}

#[test]
fn a_burst_of_ten_thousand_execs_is_summarised_with_the_exact_count() {
    const N: u64 = 10_000;
    let s = AuditSession::start();
    let user = User::create();
    let k = key();
    let mut w = Watcher::start(
        s.dir.path(),
        &k,
        &["--status-interval", "1", "--rate-burst", "20", "--rate-window", "2"],
    );
    let _rule = ExecRule::add(user.uid, &k);
    let bin = s.path("burst/t");
    foreign_binary(&bin);
    let target = bin.to_str().unwrap().to_string();
    let lp = format!("i=0; while [ $i -lt {N} ]; do {target}; i=$((i+1)); done");
    let started = Instant::now();
    assert!(user.spawn(AUID, "/bin/sh", &["-c", &lp], s.dir.path()).wait().unwrap().success());
    let loop_time = started.elapsed();
    let (mut single, mut summarised, mut summaries) = (0u64, 0u64, 0u64);
    let until = Instant::now() + Duration::from_secs(60);
    while single + summarised < N && Instant::now() < until {
        let Some(e) = w.next(Duration::from_millis(500)) else { continue };
        if is_kind(&e, "foreign-exec") && e["EXECWATCH_TARGET"] == target {
            single += 1;
        }
        if is_kind(&e, "summary") {
            summaries += 1;
            let groups: serde_json::Value = serde_json::from_str(&e["EXECWATCH_GROUPS"]).unwrap();
            for g in groups.as_array().unwrap() {
                if g["target"] == target.as_str() {
                    assert_eq!(g["uid"], user.uid);
                    summarised += g["count"].as_u64().unwrap();
                }
            }
            assert_eq!(e["PRIORITY"], "1");
        }
        assert!(
            !matches!(finding(&e), "records-lost" | "watcher-overflow" | "backlog-overflow"),
            "records were lost during the burst: {e:#?}"
        );
    }
    // Nothing more may trickle in: the count is exact, not at least.
    while let Some(e) = w.next(Duration::from_millis(2500)) {
        if is_kind(&e, "foreign-exec") && e["EXECWATCH_TARGET"] == target {
            single += 1;
        }
        if is_kind(&e, "summary") {
            let groups: serde_json::Value = serde_json::from_str(&e["EXECWATCH_GROUPS"]).unwrap();
            summarised += groups.as_array().unwrap().iter().map(|g| g["count"].as_u64().unwrap()).sum::<u64>();
        }
    }
    eprintln!("burst: {N} execs in {loop_time:?}; {single} alerted one by one, {summarised} in {summaries} summaries");
    assert_eq!(single + summarised, N, "alerts {single} + summarised {summarised}");
    assert!(single <= 20 * (loop_time.as_secs() / 2 + 2), "the rate limit let {single} through");
    assert!(summaries >= 1);
}

/// A one-shot HTTP server on loopback: each request's head and body, answered 200.
fn http_sink() -> (u16, std::sync::mpsc::Receiver<(String, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for c in l.incoming().take(64) {
            let Ok(mut c) = c else { return };
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if tx.send((head, String::from_utf8_lossy(&body).into_owned())).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

#[test]
fn a_webhook_on_loopback_and_a_command_receive_the_alert_as_json() {
    let s = AuditSession::start();
    let user = User::create();
    let k = key();
    let (port, requests) = http_sink();
    let token = format!("tok-{}", random_hex(8));
    std::fs::write(s.path("token"), format!("{token}\n")).unwrap();
    let out = s.path("command.jsonl");
    let cmd = s.path("on-alert");
    std::fs::write(&cmd, format!("#!/bin/sh\ncat >> {}\n", out.display())).unwrap();
    std::fs::set_permissions(&cmd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let url = format!("http://127.0.0.1:{port}/hook");
    let w = Watcher::start(
        s.dir.path(),
        &k,
        &[
            "--status-interval", "0",
            "--webhook-url", &url,
            "--webhook-token-file", s.path("token").to_str().unwrap(),
            "--command", cmd.to_str().unwrap(),
        ],
    );
    let _rule = ExecRule::add(user.uid, &k);
    let bin = s.path("drop/hooked");
    foreign_binary(&bin);
    assert!(user.spawn(AUID, bin.to_str().unwrap(), &["via-webhook"], s.dir.path()).wait().unwrap().success());
    let until = Instant::now() + Duration::from_secs(10);
    let mut got = None;
    while got.is_none() && Instant::now() < until {
        if let Ok((head, body)) = requests.recv_timeout(Duration::from_millis(200)) {
            let j: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
            if j["kind"] == "foreign-exec" {
                got = Some((head, j));
            }
        }
    }
    let (head, j) = got.unwrap_or_else(|| panic!("the webhook got no foreign-exec alert; journal: {:#?}", w.seen));
    assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
    assert!(head.contains(&format!("authorization: Bearer {token}")) || head.contains(&format!("Authorization: Bearer {token}")), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    assert_eq!(j["exec"]["exe"], bin.to_str().unwrap());
    assert_eq!(j["exec"]["argv"][1], "via-webhook");
    assert_eq!(j["exec"]["auid"], AUID);
    assert_eq!(j["priority"], 1);
    let until = Instant::now() + Duration::from_secs(10);
    let mut line = None;
    while line.is_none() && Instant::now() < until {
        line = std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|j| j["kind"] == "foreign-exec");
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = line.expect("the command got no foreign-exec alert on its stdin");
    assert_eq!(line["exec"]["exe"], bin.to_str().unwrap());
}

#[test]
fn the_watcher_says_when_it_stops_and_beats_while_it_runs() {
    let s = AuditSession::start();
    let k = key();
    let mut w = Watcher::start(s.dir.path(), &k, &["--status-interval", "0", "--heartbeat", "1"]);
    let hb = w
        .wait_for(Duration::from_secs(3), |e| is_kind(e, "heartbeat"))
        .unwrap_or_else(|| panic!("no heartbeat: {:#?}", w.seen));
    assert_eq!(hb["MESSAGE_ID"], "4af8ae8523d84064aa9785b868614ae5");
    assert_eq!(hb["PRIORITY"], "6");
    let st = w.stop();
    assert!(st.success(), "{st}");
    let bye = w
        .wait_for(Duration::from_secs(2), |e| finding(e) == "watcher-stopped")
        .unwrap_or_else(|| panic!("no alert on SIGTERM: {:#?}", w.seen));
    assert_eq!(bye["PRIORITY"], "1");
}
