//! The kernel audit netlink socket: the read-log multicast group (records, needs only
//! CAP_AUDIT_READ) and two read-only requests, AUDIT_GET and AUDIT_LIST_RULES (need
//! CAP_AUDIT_CONTROL; the watcher never sends anything that changes the audit state).

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const NETLINK_AUDIT: libc::c_int = 9;
/// `AUDIT_NLGRP_READLOG`: every record the kernel queues, sent to every listener.
const AUDIT_NLGRP_READLOG: u32 = 1;
pub const AUDIT_GET: u16 = 1000;
pub const AUDIT_LIST_RULES: u16 = 1013;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_HDRLEN: usize = 16;

/// One `NETLINK_AUDIT` socket.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl Socket {
    fn open(groups: u32) -> io::Result<Socket> {
        // SAFETY: plain constants; the fd is owned right away.
        let fd = check(unsafe {
            libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_AUDIT)
        })?;
        // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_groups = groups;
        // SAFETY: addr is a valid sockaddr_nl of the given length.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const _ as *const libc::sockaddr,
                size_of::<libc::sockaddr_nl>() as u32,
            )
        })?;
        Ok(Socket { fd, seq: 0 })
    }

    /// A listener on the read-log multicast group. Fails with EPERM without CAP_AUDIT_READ
    /// (in the initial user namespace), EPROTONOSUPPORT on a kernel without audit.
    pub fn multicast() -> io::Result<Socket> {
        Socket::open(1 << (AUDIT_NLGRP_READLOG - 1))
    }

    /// A socket for requests to the kernel (AUDIT_GET, AUDIT_LIST_RULES).
    pub fn control() -> io::Result<Socket> {
        Socket::open(0)
    }

    /// Ask for a receive buffer of `bytes` (capped by net.core.rmem_max); returns what the
    /// kernel granted. A flood the buffer cannot hold is lost to this listener (ENOBUFS).
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<usize> {
        let v = bytes.min(i32::MAX as usize) as libc::c_int;
        // SAFETY: valid fd, a c_int option value of the right size.
        check(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &v as *const _ as *const libc::c_void,
                size_of::<libc::c_int>() as u32,
            )
        })?;
        let mut got: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as u32;
        // SAFETY: valid fd and out-pointers of the right size.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &mut got as *mut _ as *mut libc::c_void,
                &mut len,
            )
        })?;
        Ok(got as usize)
    }

    /// Receive timeout, so a reader can notice it should stop.
    pub fn set_timeout(&self, t: Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: t.as_secs() as libc::time_t,
            tv_usec: t.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: valid fd and a timeval of the right size.
        check(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                size_of::<libc::timeval>() as u32,
            )
        })?;
        Ok(())
    }

    /// One datagram (possibly several netlink messages). ENOBUFS means records were dropped
    /// for this listener; EAGAIN/EWOULDBLOCK means the timeout passed.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buf is valid for writes of buf.len() bytes.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn request(&mut self, ty: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = [0u8; NLMSG_HDRLEN];
        msg[0..4].copy_from_slice(&(NLMSG_HDRLEN as u32).to_ne_bytes());
        msg[4..6].copy_from_slice(&ty.to_ne_bytes());
        msg[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // SAFETY: sockaddr_nl all-zero (pid 0) addresses the kernel.
        let mut to: libc::sockaddr_nl = unsafe { zeroed() };
        to.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: valid fd, buffer and address.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
                &to as *const _ as *const libc::sockaddr,
                size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(self.seq)
    }

    /// Send `ty` and collect the payloads of the answers of that type until the kernel's ack
    /// or NLMSG_DONE. An error ack (EPERM without CAP_AUDIT_CONTROL) is returned as such.
    fn ask(&mut self, ty: u16) -> io::Result<Vec<Vec<u8>>> {
        self.set_timeout(Duration::from_secs(2))?;
        let seq = self.request(ty)?;
        let mut out = vec![];
        let mut buf = vec![0u8; 1 << 16];
        let mut got_data = false;
        loop {
            let n = self.recv(&mut buf)?;
            for m in messages(&buf[..n]) {
                if m.seq != seq {
                    continue;
                }
                match m.ty {
                    NLMSG_ERROR => {
                        let code = m
                            .payload
                            .get(0..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
                            .unwrap_or(0);
                        if code != 0 {
                            return Err(io::Error::from_raw_os_error(-code));
                        }
                        // The ack. AUDIT_GET answers before it; LIST_RULES ends with DONE.
                        if ty == AUDIT_GET && got_data {
                            return Ok(out);
                        }
                    }
                    NLMSG_DONE => return Ok(out),
                    t if t == ty => {
                        got_data = true;
                        out.push(m.payload.to_vec());
                        if ty == AUDIT_GET {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The kernel's audit status (`auditctl -s`).
    pub fn status(&mut self) -> io::Result<Status> {
        let answers = self.ask(AUDIT_GET)?;
        let p = answers
            .first()
            .ok_or_else(|| io::Error::other("AUDIT_GET: no answer"))?;
        Status::parse(p).ok_or_else(|| io::Error::other("AUDIT_GET: short answer"))
    }

    /// The loaded rules (`auditctl -l`), reduced to what the watcher judges.
    pub fn rules(&mut self) -> io::Result<Vec<Rule>> {
        Ok(self
            .ask(AUDIT_LIST_RULES)?
            .iter()
            .filter_map(|p| Rule::parse(p))
            .collect())
    }
}

/// One netlink message inside a datagram.
pub struct Message<'a> {
    pub ty: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// The netlink messages of one datagram, in order.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Message<'_>> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        if off + NLMSG_HDRLEN > buf.len() {
            return None;
        }
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
        let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap());
        // The kernel's multicast copies set nlmsg_len to the skb length; clamp to the datagram.
        let end = if len < NLMSG_HDRLEN { buf.len() } else { (off + len).min(buf.len()) };
        let payload = &buf[off + NLMSG_HDRLEN..end];
        off += (len.max(NLMSG_HDRLEN) + 3) & !3;
        Some(Message { ty, seq, payload })
    })
}

/// `struct audit_status`, the fields the watcher reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub enabled: u32,
    pub failure: u32,
    pub pid: u32,
    pub rate_limit: u32,
    pub backlog_limit: u32,
    pub lost: u32,
    pub backlog: u32,
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    b.get(i * 4..i * 4 + 4)
        .map(|s| u32::from_ne_bytes(s.try_into().unwrap()))
}

impl Status {
    pub fn parse(b: &[u8]) -> Option<Status> {
        // mask, enabled, failure, pid, rate_limit, backlog_limit, lost, backlog
        Some(Status {
            enabled: u32_at(b, 1)?,
            failure: u32_at(b, 2)?,
            pid: u32_at(b, 3)?,
            rate_limit: u32_at(b, 4)?,
            backlog_limit: u32_at(b, 5)?,
            lost: u32_at(b, 6)?,
            backlog: u32_at(b, 7)?,
        })
    }
}

/// A loaded rule: its syscall mask, its arch field and its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub mask: [u32; 64],
    pub arch: Option<u32>,
    pub keys: Vec<String>,
}

const AUDIT_ARCH: u32 = 11;
const AUDIT_FILTERKEY: u32 = 210;
/// Fields whose value is the length of a string stored in the rule's buffer.
fn is_string_field(f: u32) -> bool {
    matches!(f, 13..=17 | 19..=23 | 105 | 107 | 112 | 210)
}

impl Rule {
    /// `struct audit_rule_data`: flags, action, field_count, mask[64], fields[64],
    /// values[64], fieldflags[64], buflen, buf.
    pub fn parse(b: &[u8]) -> Option<Rule> {
        let count = u32_at(b, 2)? as usize;
        let mut mask = [0u32; 64];
        for (i, m) in mask.iter_mut().enumerate() {
            *m = u32_at(b, 3 + i)?;
        }
        let buflen = u32_at(b, 3 + 64 * 4)? as usize;
        let buf = b.get((4 + 64 * 4) * 4..(4 + 64 * 4) * 4 + buflen)?;
        let mut off = 0;
        let mut arch = None;
        let mut keys = vec![];
        for i in 0..count.min(64) {
            let field = u32_at(b, 3 + 64 + i)?;
            let value = u32_at(b, 3 + 128 + i)?;
            if field == AUDIT_ARCH {
                arch = Some(value);
            }
            if is_string_field(field) {
                let s = buf.get(off..off + value as usize)?;
                off += value as usize;
                if field == AUDIT_FILTERKEY {
                    // Several keys are stored joined by \x01.
                    keys.extend(
                        String::from_utf8_lossy(s)
                            .split('\u{1}')
                            .map(str::to_string),
                    );
                }
            }
        }
        Some(Rule { mask, arch, keys })
    }

    pub fn has_syscall(&self, nr: u32) -> bool {
        nr < 64 * 32 && self.mask[(nr / 32) as usize] & (1 << (nr % 32)) != 0
    }

    /// Does this rule audit program execution (execve or execveat, for its arch)?
    pub fn audits_exec(&self) -> bool {
        let archs: &[(u32, &[u32])] = &[
            (crate::decide::ARCH_X86_64, &[59, 322]),
            (crate::decide::ARCH_I386, &[11, 358]),
            (crate::decide::ARCH_AARCH64, &[221, 281]),
        ];
        match self.arch {
            Some(a) => archs
                .iter()
                .find(|(x, _)| *x == a)
                .map(|(_, nrs)| nrs.iter().any(|n| self.has_syscall(*n)))
                .unwrap_or(false),
            // Without an arch field the mask is the native one.
            None => {
                let native: &[u32] = if cfg!(target_arch = "aarch64") { &[221, 281] } else { &[59, 322] };
                native.iter().any(|n| self.has_syscall(*n))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_bytes(syscalls: &[u32], arch: u32, key: &str) -> Vec<u8> {
        let mut w = vec![0u32; 4 + 64 * 4];
        w[2] = 2; // field_count
        for s in syscalls {
            w[3 + (*s / 32) as usize] |= 1 << (s % 32);
        }
        w[3 + 64] = AUDIT_ARCH;
        w[3 + 128] = arch;
        w[3 + 64 + 1] = AUDIT_FILTERKEY;
        w[3 + 128 + 1] = key.len() as u32;
        w[3 + 64 * 4] = key.len() as u32;
        let mut b: Vec<u8> = w.iter().flat_map(|x| x.to_ne_bytes()).collect();
        b.extend(key.as_bytes());
        b
    }

    #[test]
    fn a_listed_execve_rule_is_recognised_with_its_key() {
        let r = Rule::parse(&rule_bytes(&[59, 322], crate::decide::ARCH_X86_64, "exec")).unwrap();
        assert_eq!(r.keys, vec!["exec"]);
        assert!(r.audits_exec());
        let r = Rule::parse(&rule_bytes(&[2], crate::decide::ARCH_X86_64, "open")).unwrap();
        assert!(!r.audits_exec());
        let r = Rule::parse(&rule_bytes(&[11], crate::decide::ARCH_I386, "exec")).unwrap();
        assert!(r.audits_exec());
    }

    #[test]
    fn datagrams_split_into_messages() {
        let mut b = vec![];
        for (ty, body) in [(1300u16, &b"abc"[..]), (1320, b"")] {
            let len = (16 + body.len()) as u32;
            b.extend(len.to_ne_bytes());
            b.extend(ty.to_ne_bytes());
            b.extend(0u16.to_ne_bytes());
            b.extend(0u32.to_ne_bytes());
            b.extend(0u32.to_ne_bytes());
            b.extend(body);
            while b.len() % 4 != 0 {
                b.push(0);
            }
        }
        let m: Vec<_> = messages(&b).map(|m| (m.ty, m.payload.to_vec())).collect();
        assert_eq!(m, vec![(1300, b"abc".to_vec()), (1320, vec![])]);
    }
}
