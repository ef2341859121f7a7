//! The command line as a user (or systemd) runs it: bad input gets a message naming the fix
//! and its own exit code; `stopped` turns systemd's exit variables into an alert.

mod support;

use std::process::Command;
use support::bin;

fn run(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let o = Command::new(bin()).args(args).envs(envs.iter().copied()).output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let (code, _, err) = run(&["--frobnicate"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--frobnicate"), "{err}");
}

#[test]
fn a_missing_webhook_token_file_is_a_configuration_error_naming_the_file() {
    let (code, _, err) = run(
        &["--no-journal", "--webhook-url", "https://alerts.example/hook", "--webhook-token-file", "/nonexistent/token"],
        &[],
    );
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("/nonexistent/token") && err.contains("fix:"), "{err}");
}

#[test]
fn a_relative_allow_prefix_and_a_bad_url_are_configuration_errors() {
    let (code, _, err) = run(&["--no-journal", "--allow", "opt/app"], &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("opt/app") && err.contains("absolute"), "{err}");
    let (code, _, err) = run(&["--no-journal", "--webhook-url", "alerts.example/hook"], &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("http"), "{err}");
}

#[test]
fn without_cap_audit_read_the_watcher_says_what_it_needs() {
    // As root, drop to nobody without capabilities; otherwise we already are unprivileged.
    let o = if unsafe { libc::geteuid() } == 0 {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", bin(), "--no-journal"])
            .output()
            .expect("setpriv (util-linux)")
    } else {
        Command::new(bin()).arg("--no-journal").output().unwrap()
    };
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("CAP_AUDIT_READ"), "{err}");
}

#[test]
fn stopped_turns_a_crash_into_an_alert_and_an_orderly_stop_into_a_notice() {
    let (code, out, err) = run(
        &["stopped", "--no-journal", "--json"],
        &[("SERVICE_RESULT", "signal"), ("EXIT_CODE", "killed"), ("EXIT_STATUS", "KILL")],
    );
    assert_eq!(code, Some(0), "{err}");
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["priority"], 1);
    assert_eq!(j["fields"]["finding"], "watcher-stopped");
    assert!(j["message"].as_str().unwrap().contains("died (signal, killed KILL)"), "{j}");

    let (_, out, _) = run(&["stopped", "--no-journal", "--json"], &[("SERVICE_RESULT", "success")]);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["priority"], 5);

    let (_, out, _) = run(&["stopped", "--failed", "--no-journal", "--json"], &[]);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["priority"], 1);
    assert!(j["message"].as_str().unwrap().contains("will not be restarted"), "{j}");
}

#[test]
fn alerts_reach_a_journald_style_socket_with_structured_fields() {
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("j.sock");
    let j = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    j.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let (code, _, err) = run(&["stopped", "--journal-socket", sock.to_str().unwrap()], &[("SERVICE_RESULT", "watchdog")]);
    assert_eq!(code, Some(0), "{err}");
    let mut buf = vec![0u8; 65536];
    let n = j.recv(&mut buf).expect("a datagram on the journal socket");
    let f: std::collections::BTreeMap<_, _> = support::parse_journal_datagram(&buf[..n]).into_iter().collect();
    assert_eq!(f["PRIORITY"], "1");
    assert_eq!(f["SYSLOG_IDENTIFIER"], "paranoid-execwatch");
    assert_eq!(f["MESSAGE_ID"], "c3739fab896548c0ab7b2d2665641612");
    assert_eq!(f["EXECWATCH_SERVICE_RESULT"], "watchdog");
}
