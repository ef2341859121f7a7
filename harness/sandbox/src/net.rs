//! Sockets inside network namespaces: a short-lived thread enters the namespace, creates the
//! socket (which stays in that namespace for its whole life) and hands it back.

use crate::exec::netns_path;
use crate::sys;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Run `f` on a thread that has entered network namespace `ns`.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let path = netns_path(ns);
    std::thread::scope(|s| {
        s.spawn(move || {
            sys::enter_netns(&path)?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    })
}

/// What a TCP connection attempt found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Connected; the first bytes the peer sent (empty: it closed without sending).
    Open(String),
    /// Connected, but nothing arrived (and no close) within the read time.
    Silent,
    /// No answer within the timeout: dropped by a filter.
    TimedOut,
    /// An error came back (RST, ICMP unreachable / admin-prohibited...).
    Refused(String),
}

impl Reach {
    pub fn describe(&self) -> String {
        match self {
            Reach::Open(b) if b.is_empty() => {
                "connected, then closed by the peer without data".into()
            }
            Reach::Open(b) => format!("connected, peer sent {:?}", b.trim()),
            Reach::Silent => "connected, but the peer sent nothing yet".into(),
            Reach::TimedOut => "no answer (timed out): dropped".into(),
            Reach::Refused(e) => format!("refused: {e}"),
        }
    }
}

/// Connect from inside `ns` to `addr`, reading whatever the peer sends within `read_for`.
pub fn tcp_probe(
    ns: &str,
    addr: SocketAddr,
    timeout: Duration,
    read_for: Duration,
) -> io::Result<Reach> {
    in_netns(ns, move || {
        Ok(match TcpStream::connect_timeout(&addr, timeout) {
            Ok(mut s) => {
                s.set_read_timeout(Some(read_for))?;
                let mut buf = [0u8; 128];
                match s.read(&mut buf) {
                    Ok(n) => Reach::Open(String::from_utf8_lossy(&buf[..n]).into_owned()),
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock
                            || e.kind() == io::ErrorKind::TimedOut =>
                    {
                        Reach::Silent
                    }
                    // A reset after connecting: the peer hung up.
                    Err(_) => Reach::Open(String::new()),
                }
            }
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock =>
            {
                Reach::TimedOut
            }
            Err(e) => Reach::Refused(e.to_string()),
        })
    })
}

/// Poll until something accepts on `addr` inside `ns` (a daemon finished starting).
pub fn wait_listening(ns: &str, addr: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Reach::Open(_) | Reach::Silent) = tcp_probe(
            ns,
            addr,
            Duration::from_millis(200),
            Duration::from_millis(1),
        ) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A TCP listener created inside `ns`.
pub fn tcp_listen(ns: &str, addr: SocketAddr) -> io::Result<TcpListener> {
    in_netns(ns, move || TcpListener::bind(addr))
}

/// A UDP socket bound inside `ns`.
pub fn udp_bind(ns: &str, addr: SocketAddr) -> io::Result<UdpSocket> {
    in_netns(ns, move || UdpSocket::bind(addr))
}
