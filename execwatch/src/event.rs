//! Records to events: each kernel record is parsed by `linux-audit-parser` (the parser laurel
//! uses), and the records of one event (SYSCALL, EXECVE, CWD, PATH..., PROCTITLE, ended by
//! EOE) are gathered by their event id before anything is decided, as laurel does.

use linux_audit_parser::{Body, EventID, Message, Number, Parser, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const SYSCALL: u16 = 1300;
pub const PATH: u16 = 1302;
pub const CONFIG_CHANGE: u16 = 1305;
pub const CWD: u16 = 1307;
pub const EXECVE: u16 = 1309;
pub const EOE: u16 = 1320;
pub const PROCTITLE: u16 = 1327;

/// Turn one netlink record (type, `audit(…): body`) into the log line the parser reads.
pub fn parse_record(parser: &Parser, ty: u16, payload: &[u8]) -> Result<Message<'static>, String> {
    let mut end = payload.len();
    while end > 0 && matches!(payload[end - 1], 0 | b'\n' | b' ') {
        end -= 1;
    }
    let mut line = Vec::with_capacity(end + 32);
    line.extend_from_slice(format!("type=UNKNOWN[{ty}] msg=").as_bytes());
    line.extend_from_slice(&payload[..end]);
    // As auditd writes it to its log: one line, newline-terminated.
    line.push(b'\n');
    parser
        .parse(&line)
        .map_err(|e| {
            let shown: String = String::from_utf8_lossy(&line).chars().take(200).collect();
            format!("record type {ty}: {e} in {shown:?}")
        })
}

/// One PATH record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathItem {
    pub item: u32,
    pub name: Option<String>,
    pub inode: Option<u64>,
    /// `MAJOR:MINOR` in hex, as the kernel writes it.
    pub dev: Option<String>,
    pub nametype: Option<String>,
}

/// Everything one exec event says, as strings and numbers (lossy UTF-8 for paths).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecEvent {
    pub id: String,
    pub arch: Option<u32>,
    pub syscall: Option<u32>,
    pub success: bool,
    pub exit: Option<i64>,
    pub pid: Option<u32>,
    pub ppid: Option<u32>,
    pub uid: Option<u32>,
    pub euid: Option<u32>,
    pub auid: Option<u32>,
    pub ses: Option<u32>,
    pub tty: Option<String>,
    pub comm: Option<String>,
    pub exe: Option<String>,
    pub key: Option<String>,
    pub argv: Vec<String>,
    pub has_execve_record: bool,
    pub cwd: Option<String>,
    pub paths: Vec<PathItem>,
    pub proctitle: Option<String>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Empty => None,
        Value::Number(n) => Some(n.to_string()),
        _ => Vec::<u8>::try_from(v.clone())
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
    }
}

fn num(v: &Value) -> Option<i64> {
    match v {
        Value::Number(Number::Dec(n)) => Some(*n),
        Value::Number(Number::Hex(n)) | Value::Number(Number::Oct(n)) => Some(*n as i64),
        _ => text(v).and_then(|s| s.parse().ok()),
    }
}

fn id32(v: &Value) -> Option<u32> {
    num(v).and_then(|n| u32::try_from(n).ok())
}

/// The key field: `(null)` means none.
fn key_text(v: &Value) -> Option<String> {
    text(v).filter(|k| k != "(null)")
}

fn fields<'a>(body: &'a Body<'a>) -> impl Iterator<Item = (String, &'a Value<'a>)> {
    body.into_iter().map(|(k, v)| (k.to_string(), v))
}

impl ExecEvent {
    fn absorb(&mut self, m: &Message) {
        match m.ty.0 as u16 {
            SYSCALL => {
                for (k, v) in fields(&m.body) {
                    match k.as_str() {
                        "arch" => self.arch = num(v).map(|n| n as u32),
                        "syscall" => self.syscall = id32(v),
                        "success" => self.success = text(v).as_deref() == Some("yes"),
                        "exit" => self.exit = num(v),
                        "pid" => self.pid = id32(v),
                        "ppid" => self.ppid = id32(v),
                        "uid" => self.uid = id32(v),
                        "euid" => self.euid = id32(v),
                        "auid" => self.auid = id32(v),
                        "ses" => self.ses = id32(v),
                        "tty" => self.tty = text(v),
                        "comm" => self.comm = text(v),
                        "exe" => self.exe = text(v),
                        "key" => self.key = key_text(v),
                        _ => {}
                    }
                }
            }
            EXECVE => {
                self.has_execve_record = true;
                // a0, a1, … and split arguments a2[0], a2[1], … (with a2_len), in order.
                let mut args: Vec<(u32, Vec<u8>)> = vec![];
                for (k, v) in &m.body {
                    if let linux_audit_parser::Key::Arg(i, _) = k {
                        let bytes = Vec::<u8>::try_from(v.clone()).unwrap_or_default();
                        match args.last_mut() {
                            Some((last, b)) if *last == *i => b.extend(bytes),
                            _ => args.push((*i, bytes)),
                        }
                    }
                }
                args.sort_by_key(|(i, _)| *i);
                self.argv = args
                    .into_iter()
                    .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
                    .collect();
            }
            CWD => {
                for (k, v) in fields(&m.body) {
                    if k == "cwd" {
                        self.cwd = text(v);
                    }
                }
            }
            PATH => {
                let mut p = PathItem::default();
                for (k, v) in fields(&m.body) {
                    match k.as_str() {
                        "item" => p.item = id32(v).unwrap_or(0),
                        "name" => p.name = text(v),
                        "inode" => p.inode = num(v).map(|n| n as u64),
                        "dev" => p.dev = text(v),
                        "nametype" => p.nametype = text(v),
                        _ => {}
                    }
                }
                self.paths.push(p);
                self.paths.sort_by_key(|p| p.item);
            }
            PROCTITLE => {
                for (k, v) in fields(&m.body) {
                    if k == "proctitle" {
                        self.proctitle = text(v).map(|s| s.replace('\0', " "));
                    }
                }
            }
            _ => {}
        }
    }
}

/// What the collector hands on.
#[derive(Debug)]
pub enum Item {
    /// A complete event whose SYSCALL record carried one of the watched keys.
    Exec(ExecEvent),
    /// A CONFIG_CHANGE record (rules added or removed, audit switched on or off).
    ConfigChange { id: String, fields: Vec<(String, String)> },
}

struct Pending {
    event: ExecEvent,
    ours: Option<bool>,
    first_seen: Instant,
}

/// Gathers records into events. Records of events whose SYSCALL record is not ours are
/// dropped as they come; complete events are released on EOE or after `timeout`.
pub struct Collector {
    parser: Parser,
    keys: Vec<String>,
    pending: HashMap<EventID, Pending>,
    timeout: Duration,
    /// Records the parser refused (counted, never silently).
    pub parse_errors: u64,
    pub last_parse_error: Option<String>,
    /// Records seen, of any type.
    pub records: u64,
}

impl Collector {
    /// `keys`: audit keys whose events are judged; empty means every exec event.
    pub fn new(keys: Vec<String>, timeout: Duration) -> Collector {
        Collector {
            parser: Parser::default(),
            keys,
            pending: HashMap::new(),
            timeout,
            parse_errors: 0,
            last_parse_error: None,
            records: 0,
        }
    }

    fn wanted(&self, key: Option<&str>) -> bool {
        if self.keys.is_empty() {
            return true;
        }
        // Several keys on one rule arrive joined by \x01.
        key.map(|k| k.split('\u{1}').any(|k| self.keys.iter().any(|w| w == k)))
            .unwrap_or(false)
    }

    /// Feed one record; completed items are pushed to `out`.
    pub fn push(&mut self, ty: u16, payload: &[u8], out: &mut Vec<Item>) {
        self.records += 1;
        if !matches!(ty, SYSCALL | PATH | CONFIG_CHANGE | CWD | EXECVE | EOE | PROCTITLE) {
            return;
        }
        let m = match parse_record(&self.parser, ty, payload) {
            Ok(m) => m,
            Err(e) => {
                self.parse_errors += 1;
                self.last_parse_error = Some(e);
                return;
            }
        };
        if ty == CONFIG_CHANGE {
            let fields = fields(&m.body)
                .map(|(k, v)| (k, text(v).unwrap_or_default()))
                .collect();
            out.push(Item::ConfigChange { id: m.id.to_string(), fields });
            return;
        }
        let id = m.id;
        let p = self.pending.entry(id).or_insert_with(|| Pending {
            event: ExecEvent { id: id.to_string(), ..Default::default() },
            ours: None,
            first_seen: Instant::now(),
        });
        if ty == EOE {
            let p = self.pending.remove(&id).expect("just inserted");
            if p.ours == Some(true) {
                out.push(Item::Exec(p.event));
            }
            return;
        }
        if p.ours == Some(false) {
            return;
        }
        p.event.absorb(&m);
        if ty == SYSCALL {
            let key = p.event.key.clone();
            let ours = self.wanted(key.as_deref());
            let p = self.pending.get_mut(&id).expect("present");
            p.ours = Some(ours);
            if !ours {
                // Keep only the marker until EOE; drop what was gathered.
                p.event = ExecEvent::default();
            }
        }
    }

    /// Release events whose EOE never came (lost or reordered), so nothing waits forever.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Item>) {
        let timeout = self.timeout;
        let stale: Vec<EventID> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.first_seen) >= timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(p) = self.pending.remove(&id) {
                if p.ours == Some(true) {
                    out.push(Item::Exec(p.event));
                }
            }
        }
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDS: &[(u16, &str)] = &[
        (1300, r#"audit(1796020070.971:9): arch=c000003e syscall=59 success=yes exit=0 a0=56367ce739d0 a1=563689e54a80 a2=563689e54a90 a3=8 items=3 ppid=27295 pid=27297 auid=4242 uid=1001 gid=1001 euid=1001 suid=1001 fsuid=1001 egid=1001 sgid=1001 fsgid=1001 tty=(none) ses=7 comm="s.sh" exe="/usr/bin/dash" key="pexwprobe""#),
        (1309, r#"audit(1796020070.971:9): argc=3 a0="/bin/sh" a1="./s.sh" a2=68656C6C6F20776F726C64"#),
        (1307, r#"audit(1796020070.971:9): cwd="/tmp/pexw""#),
        (1302, r#"audit(1796020070.971:9): item=0 name="./s.sh" inode=10011846 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"#),
        (1302, r#"audit(1796020070.971:9): item=1 name="/bin/sh" inode=247076 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"#),
        (1327, r#"audit(1796020070.971:9): proctitle=2F62696E2F7368002E2F732E7368"#),
        (1320, r#"audit(1796020070.971:9): "#),
    ];

    #[test]
    fn the_records_of_one_exec_become_one_event() {
        let mut c = Collector::new(vec!["pexwprobe".into()], Duration::from_secs(2));
        let mut out = vec![];
        for (ty, r) in RECORDS {
            c.push(*ty, r.as_bytes(), &mut out);
        }
        assert_eq!(c.parse_errors, 0, "{:?}", c.last_parse_error);
        assert_eq!(out.len(), 1);
        let Item::Exec(e) = &out[0] else { panic!() };
        assert_eq!(e.id, "1796020070.971:9");
        assert_eq!(e.exe.as_deref(), Some("/usr/bin/dash"));
        assert_eq!(e.argv, vec!["/bin/sh", "./s.sh", "hello world"]);
        assert_eq!(e.cwd.as_deref(), Some("/tmp/pexw"));
        assert_eq!((e.pid, e.ppid, e.uid, e.auid, e.ses), (Some(27297), Some(27295), Some(1001), Some(4242), Some(7)));
        assert_eq!(e.arch, Some(crate::decide::ARCH_X86_64));
        assert_eq!(e.syscall, Some(59));
        assert!(e.success);
        assert_eq!(e.paths.len(), 2);
        assert_eq!(e.paths[0].name.as_deref(), Some("./s.sh"));
        assert_eq!(e.paths[0].inode, Some(10011846));
        assert_eq!(e.proctitle.as_deref(), Some("/bin/sh ./s.sh"));
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn events_of_other_keys_are_dropped_and_forgotten() {
        let mut c = Collector::new(vec!["exec".into()], Duration::from_secs(2));
        let mut out = vec![];
        for (ty, r) in RECORDS {
            c.push(*ty, r.as_bytes(), &mut out);
        }
        assert!(out.is_empty());
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn an_event_without_its_eoe_is_released_after_the_timeout() {
        let mut c = Collector::new(vec![], Duration::from_millis(0));
        let mut out = vec![];
        for (ty, r) in &RECORDS[..4] {
            c.push(*ty, r.as_bytes(), &mut out);
        }
        assert!(out.is_empty());
        c.expire(Instant::now(), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn config_changes_pass_through_with_their_fields() {
        let mut c = Collector::new(vec!["exec".into()], Duration::from_secs(2));
        let mut out = vec![];
        c.push(1305, b"audit(1796020070.991:14): op=set audit_enabled=0 old=1 auid=4294967295 ses=4294967295 res=1", &mut out);
        let Item::ConfigChange { fields, .. } = &out[0] else { panic!() };
        assert!(fields.contains(&("audit_enabled".into(), "0".into())), "{fields:?}");
        assert!(fields.contains(&("op".into(), "set".into())), "{fields:?}");
    }
}
