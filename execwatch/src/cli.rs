//! The command line: `watch` (the daemon, the default) and `stopped` (what systemd runs when
//! the daemon has stopped: ExecStopPost= and OnFailure=). Exit codes: 0 ok, 2 usage, 3 bad
//! configuration, 4 the machine cannot run it, 5 failed while running.

use crate::alert::{Alert, Kind, PRIORITY_ALERT, PRIORITY_NOTICE};
use crate::decide::{Policy, DEFAULT_INTERPRETERS};
use crate::sinks::{Emitter, SinkConfig, DEFAULT_JOURNAL_SOCKET};
use crate::watch::{self, Config, Error};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "paranoid-execwatch", version, about = "Alerts, off the box, when code from outside /nix/store runs")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    watch: WatchArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Watch the audit stream (the default).
    Watch(WatchArgs),
    /// Say that the watcher stopped (run by systemd: ExecStopPost= reads $SERVICE_RESULT,
    /// $EXIT_CODE, $EXIT_STATUS; OnFailure= passes --failed).
    Stopped(StoppedArgs),
}

#[derive(Args, Debug, Clone)]
struct SinkArgs {
    /// journald's native-protocol socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_JOURNAL_SOCKET)]
    journal_socket: PathBuf,
    /// Do not write to the journal.
    #[arg(long)]
    no_journal: bool,
    /// Also print every alert as one JSON object per line on stdout.
    #[arg(long)]
    json: bool,
    /// POST each alert as JSON to this URL (http:// or https://).
    #[arg(long, value_name = "URL")]
    webhook_url: Option<String>,
    /// File holding the webhook's bearer token (sent as `Authorization: Bearer <token>`).
    #[arg(long, value_name = "PATH", requires = "webhook_url")]
    webhook_token_file: Option<PathBuf>,
    /// Run this program for each alert, with the alert's JSON on its stdin.
    #[arg(long, value_name = "PROGRAM")]
    command: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
struct WatchArgs {
    /// Judge exec events carrying this audit key (repeatable; none: every exec event).
    #[arg(long = "key", value_name = "KEY")]
    keys: Vec<String>,
    /// Allowed path prefix besides /nix/store (repeatable; absolute).
    #[arg(long = "allow", value_name = "PREFIX")]
    allow: Vec<String>,
    /// Interpreters whose script operand is judged (comma-separated basenames).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    interpreters: Option<Vec<String>>,
    /// Never follow symlinks: judge paths only as written.
    #[arg(long)]
    no_resolve: bool,
    /// Seconds between audit status and rule polls (0: off; needs CAP_AUDIT_CONTROL).
    #[arg(long, default_value_t = 5)]
    status_interval: u64,
    /// Seconds between heartbeats (0: off).
    #[arg(long, default_value_t = 60)]
    heartbeat: u64,
    /// Foreign execs alerted one by one per window; the rest are counted and summarised.
    #[arg(long, default_value_t = 20)]
    rate_burst: u64,
    /// Seconds per rate-limit window.
    #[arg(long, default_value_t = 10)]
    rate_window: u64,
    /// Socket receive buffer to ask for, in bytes (the kernel caps it at net.core.rmem_max).
    #[arg(long, default_value_t = 8 << 20)]
    receive_buffer: usize,
    /// Milliseconds an event may wait for its end-of-event record.
    #[arg(long, default_value_t = 500)]
    event_timeout_ms: u64,
    #[command(flatten)]
    sinks: SinkArgs,
}

#[derive(Args, Debug, Clone)]
struct StoppedArgs {
    /// The unit that stopped.
    #[arg(long, default_value = "paranoid-execwatch.service")]
    unit: String,
    /// The unit entered the failed state and systemd will not restart it (OnFailure=).
    #[arg(long)]
    failed: bool,
    #[command(flatten)]
    sinks: SinkArgs,
}

fn sink_config(a: &SinkArgs) -> Result<SinkConfig, Error> {
    if let Some(u) = &a.webhook_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(Error::Config(format!(
                "--webhook-url {u:?} is not an http:// or https:// URL; fix: give the receiver's full URL, e.g. https://alerts.example.com/hook"
            )));
        }
    }
    let webhook_token = match &a.webhook_token_file {
        Some(p) => {
            let t = std::fs::read_to_string(p).map_err(|e| {
                Error::Config(format!(
                    "cannot read the webhook token file {}: {e}; fix: create it (readable by the watcher) or drop --webhook-token-file",
                    p.display()
                ))
            })?;
            let t = t.trim().to_string();
            if t.is_empty() || t.contains('\n') {
                return Err(Error::Config(format!(
                    "the webhook token file {} must hold one non-empty line",
                    p.display()
                )));
            }
            Some(t)
        }
        None => None,
    };
    if let Some(c) = &a.command {
        if !c.is_absolute() || !c.exists() {
            return Err(Error::Config(format!(
                "--command {}: not an existing absolute path; fix: give the program's absolute path",
                c.display()
            )));
        }
    }
    Ok(SinkConfig {
        journal_socket: (!a.no_journal).then(|| a.journal_socket.clone()),
        json_stdout: a.json,
        webhook_url: a.webhook_url.clone(),
        webhook_token,
        command: a.command.as_ref().map(|c| vec![c.to_string_lossy().into_owned()]),
    })
}

fn watch_config(a: &WatchArgs) -> Result<Config, Error> {
    for p in &a.allow {
        if !p.starts_with('/') {
            return Err(Error::Config(format!(
                "--allow {p:?} is not an absolute path prefix; fix: write it from the root, e.g. /opt/app"
            )));
        }
    }
    if a.rate_window == 0 {
        return Err(Error::Config("--rate-window must be at least 1 second".into()));
    }
    let secs = |n: u64| (n > 0).then(|| Duration::from_secs(n));
    Ok(Config {
        policy: Policy {
            allow: a.allow.clone(),
            interpreters: a
                .interpreters
                .clone()
                .unwrap_or_else(|| DEFAULT_INTERPRETERS.iter().map(|s| s.to_string()).collect()),
            resolve: !a.no_resolve,
        },
        keys: a.keys.clone(),
        sinks: sink_config(&a.sinks)?,
        status_interval: secs(a.status_interval),
        heartbeat: secs(a.heartbeat),
        rate_burst: a.rate_burst,
        rate_window: Duration::from_secs(a.rate_window),
        receive_buffer: a.receive_buffer,
        event_timeout: Duration::from_millis(a.event_timeout_ms),
    })
}

fn stopped(a: &StoppedArgs) -> Result<(), Error> {
    let emitter = Emitter::new(&sink_config(&a.sinks)?)
        .map_err(|e| Error::Environment(format!("cannot create the journal socket: {e}")))?;
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let result = env("SERVICE_RESULT");
    let alert = if a.failed {
        Alert::new(
            Kind::Tamper,
            PRIORITY_ALERT,
            format!("{} failed and will not be restarted: program executions are not watched", a.unit),
        )
    } else if result.is_empty() || result == "success" {
        // An orderly stop: the daemon itself has already said so.
        Alert::new(Kind::Tamper, PRIORITY_NOTICE, format!("{} stopped", a.unit))
    } else {
        Alert::new(
            Kind::Tamper,
            PRIORITY_ALERT,
            format!(
                "{} died ({result}, {} {}): program executions are not watched until it is back",
                a.unit,
                env("EXIT_CODE"),
                env("EXIT_STATUS")
            ),
        )
    };
    let alert = alert
        .with("finding", "watcher-stopped")
        .with("unit", a.unit.as_str())
        .with("service_result", result.as_str())
        .with("exit_code", env("EXIT_CODE"))
        .with("exit_status", env("EXIT_STATUS"));
    emitter.emit(&alert);
    emitter.drain(Duration::from_secs(15));
    Ok(())
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let r = match &cli.command {
        Some(Cmd::Stopped(a)) => stopped(a),
        Some(Cmd::Watch(a)) => run_watch(a),
        None => run_watch(&cli.watch),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("paranoid-execwatch: {e}");
            e.exit_code()
        }
    }
}

fn run_watch(a: &WatchArgs) -> Result<(), Error> {
    let cfg = watch_config(a)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| Error::Runtime(format!("cannot install the signal handler: {e}")))?;
    }
    watch::run(cfg, stop)
}
