//! The daemon: a reader thread empties the multicast socket into a bounded queue (the kernel
//! drops records for a listener whose socket buffer is full, so reading is all it does); the
//! main thread gathers records into events, judges them, rate-limits and emits; a third thread
//! polls the audit status and rules.

use crate::alert::{Alert, Kind, PRIORITY_ALERT, PRIORITY_INFO, PRIORITY_WARNING};
use crate::decide::Policy;
use crate::event::{Collector, ExecEvent, Item};
use crate::netlink::{messages, Socket};
use crate::ratelimit::Limiter;
use crate::sinks::{delivery_report, Emitter, SinkConfig};
use crate::tamper::{config_change, Poll};
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Config {
    pub policy: Policy,
    /// Audit keys whose exec events are judged (empty: every exec event).
    pub keys: Vec<String>,
    pub sinks: SinkConfig,
    /// AUDIT_GET / AUDIT_LIST_RULES poll (needs CAP_AUDIT_CONTROL); None: off.
    pub status_interval: Option<Duration>,
    pub heartbeat: Option<Duration>,
    pub rate_burst: u64,
    pub rate_window: Duration,
    pub receive_buffer: usize,
    /// How long an event may wait for its EOE record.
    pub event_timeout: Duration,
}

#[derive(Debug)]
pub enum Error {
    /// Bad configuration (exit 3).
    Config(String),
    /// The machine cannot run it: no audit, no CAP_AUDIT_READ (exit 4).
    Environment(String),
    /// Failed while running (exit 5).
    Runtime(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => 3,
            Error::Environment(_) => 4,
            Error::Runtime(_) => 5,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(m) | Error::Environment(m) | Error::Runtime(m) => f.write_str(m),
        }
    }
}

enum Read {
    Records(Vec<(u16, Vec<u8>)>),
    /// ENOBUFS: the socket buffer overflowed; the kernel dropped records for us.
    Overflow,
    Failed(io::Error),
}

/// Open the multicast listener, with the error a person can act on.
pub fn open_listener() -> Result<Socket, Error> {
    Socket::multicast().map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => Error::Environment(format!(
            "cannot join the audit read-log multicast group ({e}): it needs CAP_AUDIT_READ in the initial user namespace; run as root or with AmbientCapabilities=CAP_AUDIT_READ (and PrivateUsers=false)"
        )),
        Some(libc::EPROTONOSUPPORT) | Some(libc::EAFNOSUPPORT) => Error::Environment(format!(
            "this kernel has no audit netlink socket ({e}): it was built without CONFIG_AUDIT, or runs in a container without it"
        )),
        _ => Error::Environment(format!("cannot open the audit netlink socket: {e}")),
    })
}

/// Counters the heartbeat reports.
#[derive(Default)]
struct Stats {
    records: AtomicU64,
    overflows: AtomicU64,
}

pub fn run(cfg: Config, stop: Arc<AtomicBool>) -> Result<(), Error> {
    let emitter = Arc::new(
        Emitter::new(&cfg.sinks).map_err(|e| Error::Environment(format!("cannot create the journal socket: {e}")))?,
    );
    let sock = open_listener()?;
    let granted = sock.set_receive_buffer(cfg.receive_buffer).unwrap_or(0);
    sock.set_timeout(Duration::from_millis(200))
        .map_err(|e| Error::Runtime(format!("setting the socket timeout: {e}")))?;

    let stats = Arc::new(Stats::default());
    // Bounded: if judging falls behind by this many datagrams, the reader waits and the
    // kernel drops for us, which the overflow count then reports.
    let (tx, rx) = sync_channel::<Read>(1 << 16);
    let reader = {
        let stop = stop.clone();
        let stats = stats.clone();
        std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while !stop.load(Ordering::Relaxed) {
                    match sock.recv(&mut buf) {
                        Ok(n) => {
                            let recs: Vec<(u16, Vec<u8>)> =
                                messages(&buf[..n]).map(|m| (m.ty, m.payload.to_vec())).collect();
                            stats.records.fetch_add(recs.len() as u64, Ordering::Relaxed);
                            if tx.send(Read::Records(recs)).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                            stats.overflows.fetch_add(1, Ordering::Relaxed);
                            let _ = tx.send(Read::Overflow);
                        }
                        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => {}
                        Err(e) => {
                            let _ = tx.send(Read::Failed(e));
                            return;
                        }
                    }
                }
            })
            .map_err(|e| Error::Runtime(format!("cannot start the reader thread: {e}")))?
    };

    if let Some(every) = cfg.status_interval {
        let emitter = emitter.clone();
        let stop = stop.clone();
        let keys = cfg.keys.clone();
        std::thread::Builder::new()
            .name("status".into())
            .spawn(move || poll_loop(every, keys, &emitter, &stop))
            .map_err(|e| Error::Runtime(format!("cannot start the status thread: {e}")))?;
    }

    emitter.emit(
        &Alert::new(
            Kind::Lifecycle,
            PRIORITY_INFO,
            format!(
                "watching program executions: audit keys {:?}, allowed besides /nix/store {:?}, receive buffer {granted} bytes",
                cfg.keys, cfg.policy.allow
            ),
        )
        .with("event", "started")
        .with("keys", cfg.keys.clone())
        .with("allow", cfg.policy.allow.clone())
        .with("receive_buffer", granted as u64),
    );
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let watchdog = sd_notify::watchdog_enabled().is_some();

    let mut collector = Collector::new(cfg.keys.clone(), cfg.event_timeout);
    let mut limiter = Limiter::new(cfg.rate_burst, cfg.rate_window);
    let mut processes: HashMap<u32, String> = HashMap::new();
    let mut items = vec![];
    let mut last_tick = Instant::now();
    let mut last_heartbeat = Instant::now();
    let mut reported_overflows = 0u64;
    let mut reported_parse_errors = 0u64;
    let mut delivery = [0u64; 4];
    let mut foreign = 0u64;
    let mut execs = 0u64;
    let mut failure = None;

    loop {
        let stopping = stop.load(Ordering::Relaxed);
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Read::Records(recs)) => {
                for (ty, payload) in recs {
                    collector.push(ty, &payload, &mut items);
                }
            }
            Ok(Read::Overflow) => {}
            Ok(Read::Failed(e)) => {
                failure = Some(format!("reading the audit socket failed: {e}"));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // The reader also ends when told to stop; only an unexplained end is a failure.
                if failure.is_none() && !stop.load(Ordering::Relaxed) {
                    failure = Some("the reader thread ended".into());
                }
            }
        }
        let now = Instant::now();
        let tick = now.duration_since(last_tick) >= Duration::from_millis(100) || stopping || failure.is_some();
        if tick {
            collector.expire(now, &mut items);
        }
        for it in items.drain(..) {
            match it {
                Item::Exec(e) => {
                    execs += 1;
                    handle_exec(&cfg.policy, &e, &mut processes, &mut limiter, &emitter, &mut foreign, now);
                }
                Item::ConfigChange { id, fields } => {
                    if let Some(a) = config_change(&cfg.keys, &id, &fields) {
                        emitter.emit(&a);
                    }
                }
            }
        }
        if !tick {
            continue;
        }
        last_tick = now;
        if let Some(s) = limiter.roll(now, stopping || failure.is_some()) {
            emitter.emit(&s);
        }
        let overflows = stats.overflows.load(Ordering::Relaxed);
        if overflows > reported_overflows {
            emitter.emit(
                &Alert::new(
                    Kind::Tamper,
                    PRIORITY_ALERT,
                    format!(
                        "the watcher's socket buffer overflowed {} time(s): the kernel dropped audit records for the watcher (auditd still has them); execs in that gap were not judged. Raise net.core.rmem_max or --receive-buffer",
                        overflows - reported_overflows
                    ),
                )
                .with("finding", "watcher-overflow")
                .with("overflows", overflows - reported_overflows),
            );
            reported_overflows = overflows;
        }
        if collector.parse_errors > reported_parse_errors {
            emitter.emit(
                &Alert::new(
                    Kind::Tamper,
                    PRIORITY_WARNING,
                    format!(
                        "{} audit records could not be parsed and were not judged; last: {}",
                        collector.parse_errors - reported_parse_errors,
                        collector.last_parse_error.clone().unwrap_or_default()
                    ),
                )
                .with("finding", "unparsed-records")
                .with("records", collector.parse_errors - reported_parse_errors),
            );
            reported_parse_errors = collector.parse_errors;
        }
        if let Some(a) = delivery_report(&emitter.counters, &mut delivery) {
            emitter.emit(&a);
        }
        if let Some(every) = cfg.heartbeat {
            if now.duration_since(last_heartbeat) >= every {
                last_heartbeat = now;
                emitter.emit(
                    &Alert::new(Kind::Heartbeat, PRIORITY_INFO, "paranoid-execwatch is watching")
                        .with("records", stats.records.load(Ordering::Relaxed))
                        .with("exec_events", execs)
                        .with("foreign", foreign)
                        .with("alerted", limiter.total_alerted)
                        .with("summarised", limiter.total_summarised)
                        .with("overflows", overflows)
                        .with("interval_seconds", every.as_secs()),
                );
            }
        }
        if watchdog {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
        if let Some(f) = failure.take() {
            emitter.emit(
                &Alert::new(Kind::Tamper, PRIORITY_ALERT, format!("paranoid-execwatch stopped watching: {f}"))
                    .with("finding", "watcher-stopped"),
            );
            emitter.drain(Duration::from_secs(5));
            return Err(Error::Runtime(f));
        }
        if stopping {
            emitter.emit(
                &Alert::new(
                    Kind::Tamper,
                    PRIORITY_ALERT,
                    "paranoid-execwatch was told to stop (SIGTERM/SIGINT): program executions are no longer watched",
                )
                .with("finding", "watcher-stopped"),
            );
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            emitter.drain(Duration::from_secs(5));
            drop(rx);
            let _ = reader.join();
            return Ok(());
        }
    }
}

fn handle_exec(
    policy: &Policy,
    e: &ExecEvent,
    processes: &mut HashMap<u32, String>,
    limiter: &mut Limiter,
    emitter: &Emitter,
    foreign: &mut u64,
    now: Instant,
) {
    // The process table laurel keeps, reduced to pid -> executable: the parent's executable
    // is known when it was exec'd under a watched rule; /proc is the fallback.
    let parent_exe = e.ppid.and_then(|pp| {
        processes.get(&pp).cloned().or_else(|| {
            std::fs::read_link(format!("/proc/{pp}/exe")).ok().map(|p| p.to_string_lossy().into_owned())
        })
    });
    if e.success {
        if let (Some(pid), Some(exe)) = (e.pid, e.exe.clone()) {
            if processes.len() >= 1 << 16 {
                processes.clear();
            }
            processes.insert(pid, exe);
        }
    }
    if let Some(v) = policy.judge(e) {
        *foreign += 1;
        if limiter.admit(now, v.reason.name(), &v.target, e.uid) {
            emitter.emit(&Alert::foreign(e, &v, parent_exe));
        }
    }
}

fn poll_loop(every: Duration, keys: Vec<String>, emitter: &Emitter, stop: &AtomicBool) {
    let mut poll = Poll::new(keys);
    let mut sock = match Socket::control() {
        Ok(s) => s,
        Err(e) => {
            emitter.emit(&unavailable(&e));
            return;
        }
    };
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            next = Instant::now() + every;
            let r = sock.status().and_then(|s| {
                let mut a = poll.status(&s);
                a.extend(poll.rules(&sock.rules()?));
                Ok(a)
            });
            match r {
                Ok(alerts) => alerts.iter().for_each(|a| emitter.emit(a)),
                Err(e) => {
                    emitter.emit(&unavailable(&e));
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn unavailable(e: &io::Error) -> Alert {
    let why = if e.raw_os_error() == Some(libc::EPERM) {
        "it needs CAP_AUDIT_CONTROL in the initial user namespace"
    } else {
        "see the error"
    };
    Alert::new(
        Kind::Tamper,
        PRIORITY_WARNING,
        format!(
            "cannot poll the audit status and rules ({e}): {why}; disabled audit, removed rules and lost records are then seen only through CONFIG_CHANGE records"
        ),
    )
    .with("finding", "status-unavailable")
}
