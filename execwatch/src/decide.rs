//! What is foreign. An exec event is foreign when the code it runs lies outside /nix/store and
//! the allow-list: the executable itself; the script of a `#!` exec; the script an interpreter
//! in the store is handed on its command line (`bash ./x.sh`); the program `ld.so` is asked to
//! load (`ld.so /tmp/x`); and an exec the kernel refused (EACCES on a noexec mount, EPERM) of a
//! file outside them, which is evidence of an attempt.

use crate::event::{ExecEvent, PathItem};
use serde::Serialize;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, PathBuf};

pub const ARCH_X86_64: u32 = 0xc000_003e;
pub const ARCH_I386: u32 = 0x4000_0003;
pub const ARCH_AARCH64: u32 = 0xc000_00b7;

/// Why an event is foreign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The executed file is outside the allowed prefixes.
    Executable,
    /// A `#!` script outside them (its interpreter may be in the store).
    Script,
    /// An interpreter run on a script outside them (`bash ./x.sh`), seen through argv only.
    InterpreterArgument,
    /// The dynamic loader asked to run a program outside them (`ld.so /tmp/x`).
    LoaderArgument,
    /// The kernel refused to execute a file outside them (noexec mount, permissions).
    RefusedExec,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Executable => "executable",
            Reason::Script => "script",
            Reason::InterpreterArgument => "interpreter-argument",
            Reason::LoaderArgument => "loader-argument",
            Reason::RefusedExec => "refused-exec",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub reason: Reason,
    /// The foreign file (absolute, lexically normalised).
    pub target: String,
}

/// The decision rules.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Allowed path prefixes; `/nix/store` is always one.
    pub allow: Vec<String>,
    /// Basenames of interpreters whose script operand is judged (`python` also covers
    /// `python3`, `python3.12`: a trailing version is ignored).
    pub interpreters: Vec<String>,
    /// Follow symlinks (as the watcher sees the filesystem) before calling a path foreign:
    /// `/run/current-system/sw/bin/x` is the store. A path that cannot be resolved, or whose
    /// inode is not the one the kernel recorded, stays foreign.
    pub resolve: bool,
}

pub const STORE: &str = "/nix/store";

pub const DEFAULT_INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "yash", "fish", "csh", "tcsh", "python", "perl", "ruby",
    "node", "php", "lua", "luajit", "tclsh", "Rscript", "guile", "pwsh", "deno", "bun",
];

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow: vec![],
            interpreters: DEFAULT_INTERPRETERS.iter().map(|s| s.to_string()).collect(),
            resolve: true,
        }
    }
}

/// `cwd` + `name` without touching the filesystem: `.` dropped, `..` popped.
pub fn normalise(cwd: Option<&str>, name: &str) -> String {
    let mut full = PathBuf::new();
    if !name.starts_with('/') {
        full.push(cwd.unwrap_or("/"));
    }
    full.push(name);
    let mut out = PathBuf::from("/");
    for c in full.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s),
            _ => {}
        }
    }
    out.to_string_lossy().into_owned()
}

fn under(path: &str, prefix: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    p.is_empty() || path == p || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'/'))
}

/// Strip a trailing version: python3.12 -> python, perl5.38 -> perl.
fn family(base: &str) -> &str {
    base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// glibc's and musl's dynamic loaders.
pub fn is_loader(path: &str) -> bool {
    let b = basename(path);
    (b.starts_with("ld-linux") || b.starts_with("ld-musl") || b.starts_with("ld64.so") || b == "ld.so")
        && b.contains(".so")
}

/// "MAJOR:MINOR" in hex, as PATH records write a device.
fn dev_text(dev: u64) -> String {
    format!("{:02x}:{:02x}", libc::major(dev), libc::minor(dev))
}

impl Policy {
    pub fn allowed(&self, path: &str) -> bool {
        under(path, STORE) || self.allow.iter().any(|a| under(path, a))
    }

    /// Is `path` (absolute, normalised) allowed, following symlinks where we can see them?
    /// `recorded`: the inode (and device) the kernel recorded for it, which the resolved file
    /// must still be.
    fn allowed_resolved(&self, path: &str, recorded: Option<&PathItem>) -> bool {
        if self.allowed(path) {
            return true;
        }
        if !self.resolve {
            return false;
        }
        let Ok(real) = std::fs::canonicalize(path) else { return false };
        let real_s = real.to_string_lossy();
        if !self.allowed(&real_s) {
            return false;
        }
        match recorded {
            Some(PathItem { inode: Some(ino), dev, .. }) => match std::fs::metadata(&real) {
                Ok(m) => m.ino() == *ino && dev.as_deref().map(|d| d == dev_text(m.dev())).unwrap_or(true),
                Err(_) => false,
            },
            _ => true,
        }
    }

    fn is_interpreter(&self, exe: &str) -> bool {
        let b = basename(exe);
        let f = family(b);
        self.interpreters.iter().any(|i| i == b || i == f)
    }

    /// Judge one exec event; `None` when nothing foreign ran or was attempted.
    pub fn judge(&self, e: &ExecEvent) -> Option<Verdict> {
        let cwd = e.cwd.as_deref();
        if !e.success {
            // Only a refusal of an existing file is evidence; ENOENT is a PATH search.
            let refused = matches!(e.exit, Some(-13) | Some(-1));
            let item0 = e.paths.first()?;
            let target = normalise(cwd, item0.name.as_deref()?);
            if refused && !self.allowed_resolved(&target, Some(item0)) {
                return Some(Verdict { reason: Reason::RefusedExec, target });
            }
            return None;
        }
        if let Some(exe) = e.exe.as_deref() {
            // exe is the kernel's own path of the running file (no symlinks, no ".."); a
            // deleted file reads "<path> (deleted)", a memfd "/memfd:<name> (deleted)".
            if !self.allowed(exe) {
                return Some(Verdict { reason: Reason::Executable, target: exe.to_string() });
            }
        }
        // A `#!` script: PATH item 0 is the file named in execve and item 1 its interpreter;
        // for an ELF program item 1 is the dynamic loader instead.
        if e.paths.len() >= 2 {
            let item1 = e.paths[1].name.as_deref().unwrap_or("");
            if !is_loader(item1) {
                if let Some(name) = e.paths[0].name.as_deref() {
                    let script = normalise(cwd, name);
                    if !self.allowed_resolved(&script, Some(&e.paths[0])) {
                        return Some(Verdict { reason: Reason::Script, target: script });
                    }
                }
            }
        }
        let exe = e.exe.as_deref().unwrap_or("");
        if is_loader(exe) {
            if let Some(prog) = loader_operand(&e.argv) {
                let t = normalise(cwd, prog);
                if !self.allowed_resolved(&t, None) {
                    return Some(Verdict { reason: Reason::LoaderArgument, target: t });
                }
            }
        } else if self.is_interpreter(exe) {
            if let Some(script) = script_operand(family(basename(exe)), &e.argv) {
                let t = normalise(cwd, script);
                if !self.allowed_resolved(&t, None) {
                    return Some(Verdict { reason: Reason::InterpreterArgument, target: t });
                }
            }
        }
        None
    }
}

/// The program `ld.so [options] PROGRAM [args]` is asked to run.
pub fn loader_operand(argv: &[String]) -> Option<&str> {
    const WITH_ARG: &[&str] = &[
        "--library-path", "--preload", "--audit", "--argv0", "--inhibit-rpath",
        "--glibc-hwcaps-prefix", "--glibc-hwcaps-mask",
    ];
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            return it.next().map(String::as_str);
        }
        if WITH_ARG.contains(&a.as_str()) {
            it.next();
            continue;
        }
        if a.starts_with("--") {
            continue;
        }
        return Some(a);
    }
    None
}

/// The script an interpreter is handed as its first operand, or `None` when it runs code
/// from its command line (`-c`, `-e`, `-m`), from stdin, or interactively.
pub fn script_operand<'a>(family: &str, argv: &'a [String]) -> Option<&'a str> {
    // Options that mean "the code is on the command line / a module": no script file.
    let (inline, with_arg): (&[&str], &[&str]) = match family {
        "python" => (&["-c", "-m"], &["-W", "-X", "-Q"]),
        "perl" => (&["-e", "-E"], &["-I", "-M", "-m", "-x"]),
        "ruby" => (&["-e"], &["-I", "-r", "-C", "-E"]),
        "node" | "deno" | "bun" => (&["-e", "--eval", "-p", "--print"], &["-r", "--require", "--import"]),
        "php" => (&["-r"], &["-c", "-d", "-z"]),
        "lua" | "luajit" => (&["-e"], &["-l"]),
        "Rscript" => (&["-e"], &[]),
        "guile" => (&["-c"], &["-L", "-l", "-e", "-x"]),
        "pwsh" => (&["-c", "-Command", "-EncodedCommand"], &["-File"]),
        // POSIX shells: -c (also inside a cluster such as -ec); -o/+o take an argument.
        _ => (&["-c"], &["-o", "+o", "--rcfile", "--init-file", "-O", "+O"]),
    };
    let shell = !matches!(
        family,
        "python" | "perl" | "ruby" | "node" | "deno" | "bun" | "php" | "lua" | "luajit" | "Rscript" | "guile" | "pwsh"
    );
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.as_str();
        if s == "--" {
            return it.next().map(String::as_str);
        }
        if s == "-" {
            return None;
        }
        if inline.contains(&s) || inline.iter().any(|o| o.len() == 2 && s.starts_with(o) && !shell) {
            return None;
        }
        if shell && s.starts_with('-') && !s.starts_with("--") && s[1..].contains('c') {
            return None;
        }
        if shell && s.starts_with('-') && !s.starts_with("--") && s[1..].contains('s') {
            // -s: commands from stdin.
            return None;
        }
        if with_arg.contains(&s) {
            it.next();
            continue;
        }
        if s.starts_with('-') || (shell && s.starts_with('+')) {
            continue;
        }
        return Some(s);
    }
    None
}

/// The errno a failed exec returned, by name (`EACCES`), or the number.
pub fn result_text(e: &ExecEvent) -> String {
    if e.success {
        return "success".into();
    }
    match e.exit {
        Some(-1) => "EPERM".into(),
        Some(-2) => "ENOENT".into(),
        Some(-8) => "ENOEXEC".into(),
        Some(-13) => "EACCES".into(),
        Some(n) => format!("failed ({n})"),
        None => "failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(exe: &str, argv: &[&str], paths: &[&str]) -> ExecEvent {
        ExecEvent {
            success: true,
            exit: Some(0),
            exe: Some(exe.into()),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: Some("/home/u".into()),
            paths: paths
                .iter()
                .enumerate()
                .map(|(i, n)| PathItem { item: i as u32, name: Some(n.to_string()), ..Default::default() })
                .collect(),
            ..Default::default()
        }
    }

    fn p() -> Policy {
        Policy { resolve: false, ..Policy::default() }
    }

    const BASH: &str = "/nix/store/aaaa-bash-5.2/bin/bash";
    const LD: &str = "/nix/store/bbbb-glibc-2.40/lib/ld-linux-x86-64.so.2";

    #[test]
    fn a_binary_outside_the_store_is_foreign_inside_is_not() {
        let v = p().judge(&ev("/tmp/x/true", &["/tmp/x/true"], &["/tmp/x/true", LD])).unwrap();
        assert_eq!(v, Verdict { reason: Reason::Executable, target: "/tmp/x/true".into() });
        assert_eq!(p().judge(&ev("/nix/store/cccc-coreutils/bin/true", &["true"], &["/run/current-system/sw/bin/true", LD])), None);
    }

    #[test]
    fn the_allow_list_matches_whole_path_components() {
        let pol = Policy { allow: vec!["/opt/app".into()], ..p() };
        assert!(pol.allowed("/opt/app/bin/x"));
        assert!(pol.allowed("/opt/app"));
        assert!(!pol.allowed("/opt/application/x"));
        assert!(!pol.allowed("/nix/storex/y"));
    }

    #[test]
    fn a_shebang_script_outside_is_foreign_even_with_its_interpreter_in_the_store() {
        let v = p().judge(&ev(BASH, &["/bin/sh", "./x.sh"], &["./x.sh", "/bin/sh", LD])).unwrap();
        assert_eq!(v, Verdict { reason: Reason::Script, target: "/home/u/x.sh".into() });
    }

    #[test]
    fn an_interpreter_handed_a_script_outside_is_foreign_through_its_argv() {
        let v = p().judge(&ev(BASH, &["bash", "-e", "../u/./x.sh", "arg"], &[BASH, LD])).unwrap();
        assert_eq!(v, Verdict { reason: Reason::InterpreterArgument, target: "/home/u/x.sh".into() });
        let py = "/nix/store/dddd-python3-3.12/bin/python3.12";
        let v = p().judge(&ev(py, &["python3", "-u", "/tmp/a.py"], &[py, LD])).unwrap();
        assert_eq!(v.reason, Reason::InterpreterArgument);
        // Code on the command line, from stdin, a module, or a store script: nothing to judge.
        for argv in [&["bash", "-c", "echo hi"][..], &["bash", "-ec", "x"], &["bash"], &["bash", "-s"], &["bash", "/nix/store/eeee-s/x.sh"]] {
            assert_eq!(p().judge(&ev(BASH, argv, &[BASH, LD])), None, "{argv:?}");
        }
        assert_eq!(p().judge(&ev(py, &["python3", "-m", "http.server"], &[py, LD])), None);
    }

    #[test]
    fn the_loader_asked_to_run_a_program_outside_is_foreign() {
        let v = p().judge(&ev(LD, &["ld.so", "--library-path", "/x", "/tmp/prog"], &[LD])).unwrap();
        assert_eq!(v, Verdict { reason: Reason::LoaderArgument, target: "/tmp/prog".into() });
        assert_eq!(p().judge(&ev(LD, &["ld.so", "--list", "/nix/store/ffff/bin/x"], &[LD])), None);
    }

    #[test]
    fn a_refused_exec_outside_is_foreign_a_path_search_miss_is_not() {
        let mut e = ev("/nix/store/aaaa-bash/bin/bash", &[], &["/tmp/nx/t"]);
        e.success = false;
        e.exit = Some(-13);
        let v = p().judge(&e).unwrap();
        assert_eq!(v, Verdict { reason: Reason::RefusedExec, target: "/tmp/nx/t".into() });
        assert_eq!(result_text(&e), "EACCES");
        e.exit = Some(-2);
        assert_eq!(p().judge(&e), None);
    }

    #[test]
    fn a_symlink_into_the_store_is_followed_only_when_the_inode_matches() {
        let d = tempfile::tempdir().unwrap();
        let store_like = d.path().join("store");
        std::fs::create_dir(&store_like).unwrap();
        let real = store_like.join("x.sh");
        std::fs::write(&real, "#!/bin/sh\n").unwrap();
        let link = d.path().join("link.sh");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let pol = Policy { allow: vec![store_like.to_string_lossy().into()], resolve: true, ..Policy::default() };
        let meta = std::fs::metadata(&real).unwrap();
        let mut e = ev(BASH, &["/bin/sh", link.to_str().unwrap()], &[link.to_str().unwrap(), "/bin/sh"]);
        e.paths[0].inode = Some(meta.ino());
        e.paths[0].dev = Some(dev_text(meta.dev()));
        assert_eq!(pol.judge(&e), None);
        e.paths[0].inode = Some(meta.ino() + 1);
        assert_eq!(pol.judge(&e).unwrap().reason, Reason::Script);
        let no_follow = Policy { resolve: false, ..pol };
        e.paths[0].inode = Some(meta.ino());
        assert_eq!(no_follow.judge(&e).unwrap().reason, Reason::Script);
    }
}
