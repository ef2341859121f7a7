//! The few Linux system calls the standard library does not wrap: entering and creating
//! namespaces for one thread, advisory locks, signals. Declared here (glibc exports them) so the
//! crate needs no extra dependency; every wrapper turns errno into an `io::Error`.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::raw::{c_char, c_int, c_ulong, c_void};
use std::os::unix::io::AsRawFd;
use std::path::Path;

extern "C" {
    fn setns(fd: c_int, nstype: c_int) -> c_int;
    fn unshare(flags: c_int) -> c_int;
    fn mount(
        source: *const c_char,
        target: *const c_char,
        fstype: *const c_char,
        flags: c_ulong,
        data: *const c_void,
    ) -> c_int;
    fn flock(fd: c_int, operation: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn geteuid() -> u32;
    fn signal(signum: c_int, handler: usize) -> usize;
}

pub const CLONE_FS: c_int = 0x0000_0200;
pub const CLONE_NEWNS: c_int = 0x0002_0000;
pub const CLONE_NEWNET: c_int = 0x4000_0000;
const MS_RDONLY: c_ulong = 1;
const MS_REMOUNT: c_ulong = 32;
const MS_BIND: c_ulong = 4096;
const MS_REC: c_ulong = 16384;
const MS_PRIVATE: c_ulong = 1 << 18;
const LOCK_EX: c_int = 2;
const LOCK_NB: c_int = 4;
pub const SIGINT: c_int = 2;
pub const SIGKILL: c_int = 9;
pub const SIGTERM: c_int = 15;

fn check(rc: c_int) -> io::Result<()> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { geteuid() == 0 }
}

/// Move the CALLING THREAD into the network namespace at `path` (e.g. /run/netns/NAME).
/// Only use on a thread dedicated to that namespace: it never moves back.
pub fn enter_netns(path: &Path) -> io::Result<()> {
    enter_netns_file(&File::open(path)?)
}

/// `enter_netns` with the namespace already open (e.g. opened before entering a mount
/// namespace where /run/netns does not show it).
pub fn enter_netns_file(f: &File) -> io::Result<()> {
    // SAFETY: a valid open fd and a namespace type constant.
    check(unsafe { setns(f.as_raw_fd(), CLONE_NEWNET) })
}

/// Give the CALLING THREAD its own mount namespace whose mounts do not propagate to the host
/// (`unshare -m --propagation private`). Processes it spawns inherit it; it disappears with
/// the thread and its children, and the host never sees its mounts.
pub fn private_mount_namespace() -> io::Result<()> {
    // SAFETY: plain flag argument; CLONE_NEWNS implies CLONE_FS, which is allowed per thread.
    check(unsafe { unshare(CLONE_NEWNS) })?;
    let root = CString::new("/").unwrap();
    // SAFETY: valid C strings / nulls as mount(2) documents for a propagation change.
    check(unsafe {
        mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            MS_REC | MS_PRIVATE,
            std::ptr::null(),
        )
    })
}

/// Bind-mount `src` over `dst` (files or directories) in the calling thread's mount namespace.
pub fn bind_mount(src: &Path, dst: &Path) -> io::Result<()> {
    let (s, d) = (c_path(src)?, c_path(dst)?);
    // SAFETY: valid C strings; a bind mount ignores fstype and data.
    check(unsafe {
        mount(
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            MS_BIND,
            std::ptr::null(),
        )
    })
}

/// Bind-mount `src` (with its submounts) on `dst`, read-only, in the calling thread's mount
/// namespace.
pub fn bind_mount_readonly(src: &Path, dst: &Path) -> io::Result<()> {
    let (s, d) = (c_path(src)?, c_path(dst)?);
    // SAFETY: valid C strings; a bind mount ignores fstype and data.
    check(unsafe {
        mount(
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            MS_BIND | MS_REC,
            std::ptr::null(),
        )
    })?;
    // SAFETY: as above; a read-only remount of that bind mount.
    check(unsafe {
        mount(
            std::ptr::null(),
            d.as_ptr(),
            std::ptr::null(),
            MS_REMOUNT | MS_BIND | MS_RDONLY,
            std::ptr::null(),
        )
    })
}

/// Mount a fresh tmpfs on `dst` in the calling thread's mount namespace.
pub fn mount_tmpfs(dst: &Path, data: &str) -> io::Result<()> {
    let d = c_path(dst)?;
    let (t, o) = (
        CString::new("tmpfs").unwrap(),
        CString::new(data).map_err(io::Error::other)?,
    );
    // SAFETY: valid C strings as mount(2) documents for a new tmpfs.
    check(unsafe {
        mount(
            t.as_ptr(),
            d.as_ptr(),
            t.as_ptr(),
            0,
            o.as_ptr() as *const c_void,
        )
    })
}

/// Move the CALLING THREAD into the mount namespace `ns` (an open /proc/…/ns/mnt). The thread
/// first stops sharing its filesystem attributes with the process's other threads, which
/// setns(2) requires for a mount namespace; use a thread dedicated to that namespace.
pub fn enter_mount_ns(ns: &File) -> io::Result<()> {
    // SAFETY: plain flag argument; a thread may unshare its fs_struct.
    check(unsafe { unshare(CLONE_FS) })?;
    // SAFETY: a valid open fd and a namespace type constant.
    check(unsafe { setns(ns.as_raw_fd(), CLONE_NEWNS) })
}

fn c_path(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Try to take an exclusive lock without waiting. Ok(true): taken (held while `file` lives).
pub fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: valid fd.
    let rc = unsafe { flock(file.as_raw_fd(), LOCK_EX | LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(11) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Send `sig` to one process (never a group: pid must be > 0).
pub fn signal_pid(pid: u32, sig: c_int) -> io::Result<()> {
    if pid == 0 || pid > i32::MAX as u32 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal pid 0 or a process group",
        ));
    }
    // SAFETY: positive pid, valid signal number.
    check(unsafe { kill(pid as c_int, sig) })
}

/// Install `handler` for SIGINT (BSD semantics: restarted system calls).
pub fn on_sigint(handler: extern "C" fn(c_int)) {
    // SAFETY: the handler only stores to atomics (async-signal-safe).
    unsafe {
        signal(SIGINT, handler as usize);
    }
}

/// The lock every process that changes the kernel's audit state holds meanwhile: the sandbox's
/// audit checks and paranoid-execwatch's live tests, so parallel runs never collide.
pub const AUDIT_LOCK: &str = "/run/lock/paranoid-audit.lock";

/// Take `AUDIT_LOCK` exclusively, waiting at most `wait`; held while the file lives.
pub fn audit_lock(wait: std::time::Duration) -> io::Result<File> {
    std::fs::create_dir_all("/run/lock")?;
    let f = File::options().create(true).truncate(false).write(true).open(AUDIT_LOCK)?;
    let until = std::time::Instant::now() + wait;
    loop {
        if try_lock(&f)? {
            return Ok(f);
        }
        if std::time::Instant::now() >= until {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{AUDIT_LOCK} is held by another process (an audit test or sandbox run)"),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
