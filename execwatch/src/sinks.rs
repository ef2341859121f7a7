//! Where alerts go: the journal (native protocol, so the fields travel with the journal to a
//! log host), JSON lines on stdout, an HTTP webhook and a command. The journal write happens
//! in the caller's thread; the webhook and the command run on their own threads behind bounded
//! queues, and anything they fail to deliver is counted and said in the journal.

use crate::alert::{journal_datagram, Alert, Kind, PRIORITY_WARNING};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const DEFAULT_JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

#[derive(Clone, Debug, Default)]
pub struct SinkConfig {
    /// journald's native socket; None: no journal output.
    pub journal_socket: Option<PathBuf>,
    pub json_stdout: bool,
    pub webhook_url: Option<String>,
    /// The bearer token (read from its file at start).
    pub webhook_token: Option<String>,
    /// argv of a command run for each alert, the alert's JSON on its stdin.
    pub command: Option<Vec<String>>,
}

#[derive(Default)]
pub struct Counters {
    pub emitted: AtomicU64,
    pub journal_errors: AtomicU64,
    pub webhook_queued: AtomicU64,
    pub webhook_sent: AtomicU64,
    pub webhook_failed: AtomicU64,
    pub webhook_dropped: AtomicU64,
    pub command_queued: AtomicU64,
    pub command_ok: AtomicU64,
    pub command_failed: AtomicU64,
    pub command_dropped: AtomicU64,
}

/// Every sink, shared by the watcher's threads.
pub struct Emitter {
    journal: Option<(UnixDatagram, PathBuf)>,
    json: bool,
    stdout: Mutex<()>,
    webhook: Option<SyncSender<Alert>>,
    command: Option<SyncSender<Alert>>,
    pub counters: Arc<Counters>,
    last_journal_error: Mutex<Option<String>>,
}

const QUEUE: usize = 4096;

impl Emitter {
    pub fn new(cfg: &SinkConfig) -> std::io::Result<Emitter> {
        let counters = Arc::new(Counters::default());
        let journal = match &cfg.journal_socket {
            Some(p) => Some((UnixDatagram::unbound()?, p.clone())),
            None => None,
        };
        let webhook = cfg.webhook_url.as_ref().map(|url| {
            let (tx, rx) = sync_channel::<Alert>(QUEUE);
            let url = url.clone();
            let token = cfg.webhook_token.clone();
            let c = counters.clone();
            std::thread::Builder::new()
                .name("webhook".into())
                .spawn(move || webhook_loop(rx, &url, token.as_deref(), &c))
                .expect("spawn webhook thread");
            tx
        });
        let command = cfg.command.as_ref().map(|argv| {
            let (tx, rx) = sync_channel::<Alert>(QUEUE);
            let argv = argv.clone();
            let c = counters.clone();
            std::thread::Builder::new()
                .name("command".into())
                .spawn(move || command_loop(rx, &argv, &c))
                .expect("spawn command thread");
            tx
        });
        Ok(Emitter {
            journal,
            json: cfg.json_stdout,
            stdout: Mutex::new(()),
            webhook,
            command,
            counters,
            last_journal_error: Mutex::new(None),
        })
    }

    /// Send one alert everywhere. Heartbeats and life-cycle notes go to the journal and
    /// stdout only: the webhook and the command are for things a person must look at.
    pub fn emit(&self, a: &Alert) {
        self.counters.emitted.fetch_add(1, Ordering::Relaxed);
        self.journal(a);
        if self.json {
            let _g = self.stdout.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", a.to_json());
            let _ = out.flush();
        }
        if matches!(a.kind, Kind::Heartbeat | Kind::Lifecycle) {
            return;
        }
        let c = &self.counters;
        if let Some(tx) = &self.webhook {
            match tx.try_send(a.clone()) {
                Ok(()) => c.webhook_queued.fetch_add(1, Ordering::Relaxed),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => c.webhook_dropped.fetch_add(1, Ordering::Relaxed),
            };
        }
        if let Some(tx) = &self.command {
            match tx.try_send(a.clone()) {
                Ok(()) => c.command_queued.fetch_add(1, Ordering::Relaxed),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => c.command_dropped.fetch_add(1, Ordering::Relaxed),
            };
        }
    }

    fn journal(&self, a: &Alert) {
        let Some((sock, path)) = &self.journal else { return };
        let d = journal_datagram(&a.journal_fields());
        if let Err(e) = sock.send_to(&d, path) {
            self.counters.journal_errors.fetch_add(1, Ordering::Relaxed);
            let msg = format!("cannot write to the journal at {}: {e}", path.display());
            // stderr reaches the journal through systemd's stream too, if it is alive.
            eprintln!("paranoid-execwatch: {msg}: {}", a.message);
            *self.last_journal_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
        }
    }

    /// Wait until the webhook and command queues are empty (or `limit` passes).
    pub fn drain(&self, limit: Duration) {
        let until = Instant::now() + limit;
        let c = &self.counters;
        while Instant::now() < until {
            let w = c.webhook_sent.load(Ordering::Relaxed) + c.webhook_failed.load(Ordering::Relaxed);
            let r = c.command_ok.load(Ordering::Relaxed) + c.command_failed.load(Ordering::Relaxed);
            if w >= c.webhook_queued.load(Ordering::Relaxed) && r >= c.command_queued.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn webhook_loop(rx: Receiver<Alert>, url: &str, token: Option<&str>, c: &Counters) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(true)
        .build()
        .into();
    for a in rx {
        let body = a.to_json();
        let mut ok = false;
        // Three tries, a second apart: a log host restarting should not lose the alert.
        for attempt in 0..3 {
            let mut req = agent.post(url).header("Content-Type", "application/json");
            if let Some(t) = token {
                req = req.header("Authorization", &format!("Bearer {t}"));
            }
            match req.send(body.as_bytes()) {
                Ok(_) => {
                    ok = true;
                    break;
                }
                Err(e) => {
                    eprintln!("paranoid-execwatch: webhook {url} (try {}): {e}", attempt + 1);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        if ok {
            c.webhook_sent.fetch_add(1, Ordering::Relaxed);
        } else {
            c.webhook_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn command_loop(rx: Receiver<Alert>, argv: &[String], c: &Counters) {
    for a in rx {
        let ok = run_command(argv, &a);
        if ok {
            c.command_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            c.command_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn run_command(argv: &[String], a: &Alert) -> bool {
    let Some((prog, args)) = argv.split_first() else { return false };
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .env("EXECWATCH_KIND", a.kind.name())
        .env("EXECWATCH_MESSAGE", &a.message)
        .env("EXECWATCH_PRIORITY", a.priority.to_string());
    if let Some(x) = &a.exec {
        cmd.env("EXECWATCH_TARGET", &x.target).env("EXECWATCH_REASON", x.reason);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paranoid-execwatch: command {prog}: {e}");
            return false;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(a.to_json().as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    // At most 30 s per alert: a hung command must not stall the queue forever.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                if !st.success() {
                    eprintln!("paranoid-execwatch: command {prog} exited with {st}");
                }
                return st.success();
            }
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("paranoid-execwatch: command {prog} took over 30 s; killed");
                return false;
            }
        }
    }
}

/// A warning for undelivered webhook/command alerts since the last report, if any.
pub fn delivery_report(c: &Counters, last: &mut [u64; 4]) -> Option<Alert> {
    let now = [
        c.webhook_failed.load(Ordering::Relaxed),
        c.webhook_dropped.load(Ordering::Relaxed),
        c.command_failed.load(Ordering::Relaxed),
        c.command_dropped.load(Ordering::Relaxed),
    ];
    if now == *last {
        return None;
    }
    let d: Vec<u64> = now.iter().zip(last.iter()).map(|(a, b)| a - b).collect();
    *last = now;
    Some(
        Alert::new(
            Kind::Tamper,
            PRIORITY_WARNING,
            format!(
                "alerts not delivered off the box: webhook failed {} / queue full {}, command failed {} / queue full {} (the journal has them all)",
                d[0], d[1], d[2], d[3]
            ),
        )
        .with("finding", "delivery-failed")
        .with("webhook_failed", d[0])
        .with("webhook_dropped", d[1])
        .with("command_failed", d[2])
        .with("command_dropped", d[3]),
    )
}
