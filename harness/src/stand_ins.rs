//! Stand-in packages for a host module on the offline surface (docs/harness.md, "Stand-in
//! packages"). The surface has no nixpkgs: `pkgs` is a finite set of inert stand-ins
//! (checks/surface/pkgs.nix), and Nix has no hook for a missing attribute. So before a module is
//! evaluated, every identifier in it and in the files it imports by literal relative path is
//! handed to the surface as a stand-in name (extra names are harmless: `with pkgs;` has the
//! lowest scope priority, and nothing reads a name it does not use). When Nix still reports
//! `attribute 'X' missing` or `undefined variable 'X'` (a file imported by a computed path,
//! a nested package set), the evaluation is retried with X added, a bounded number of times; a
//! name that does not help is a real error, reported as Nix said it.
//!
//! Likewise for upstream modules a host imports from `modulesPath` (docs/harness.md, "Upstream
//! modules from modulesPath"): the surface has stand-ins for the common ones; when Nix reports
//! one missing, the evaluation is retried with a generated `modulesPath` that has it too.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Retries after the first evaluation, each adding one name Nix reported missing.
pub const MAX_RETRIES: usize = 8;

/// Files scanned at most (the module and what it imports), and bytes read of each.
const MAX_FILES: usize = 500;
const MAX_BYTES: u64 = 2 << 20;

const KEYWORDS: &[&str] = &[
    "if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or",
];

/// Every identifier in `module` and in the `.nix` files (or directories with a `default.nix`)
/// it reaches through literal relative paths (`./x.nix`, `../common`).
pub fn scan(module: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([module.to_path_buf()]);
    while let Some(file) = queue.pop_front() {
        if seen.len() >= MAX_FILES || !seen.insert(file.clone()) {
            continue;
        }
        let Ok(text) = read_bounded(&file) else {
            continue;
        };
        let dir = file.parent().unwrap_or(Path::new("/"));
        for token in tokens(&text) {
            match token {
                Token::Ident(name) => {
                    if !KEYWORDS.contains(&name) && name.len() <= 100 {
                        names.insert(name.to_string());
                    }
                }
                Token::Path(rel) => {
                    if let Some(target) = nix_file(&dir.join(rel)) {
                        queue.push_back(target);
                    }
                }
            }
        }
    }
    names
}

fn read_bounded(file: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(file)?
        .take(MAX_BYTES)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The file a Nix path expression names: the file itself, or a directory's `default.nix`.
fn nix_file(p: &Path) -> Option<PathBuf> {
    let p = p.canonicalize().ok()?;
    if p.is_dir() {
        let d = p.join("default.nix");
        d.is_file().then_some(d)
    } else {
        (p.is_file() && p.extension().is_some_and(|e| e == "nix")).then_some(p)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Ident(&'a str),
    Path(&'a str),
}

/// Identifiers (`[A-Za-z_][A-Za-z0-9_'-]*`, as Nix lexes them) and relative paths, wherever they
/// appear (strings and comments too: an extra name costs nothing).
fn tokens(text: &str) -> Vec<Token<'_>> {
    let b = text.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    let ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_';
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'\'' | b'-');
    let path_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'+' | b'/');
    while i < b.len() {
        let c = b[i];
        let prev_is_path = i > 0 && path_char(b[i - 1]);
        if c == b'.' && !prev_is_path && (b[i..].starts_with(b"./") || b[i..].starts_with(b"../")) {
            let start = i;
            while i < b.len() && path_char(b[i]) {
                i += 1;
            }
            out.push(Token::Path(&text[start..i]));
        } else if ident_start(c) && !(i > 0 && ident_char(b[i - 1])) {
            let start = i;
            while i < b.len() && ident_char(b[i]) {
                i += 1;
            }
            out.push(Token::Ident(&text[start..i]));
        } else {
            i += 1;
        }
    }
    out
}

/// The name in Nix's "attribute 'X' missing" or "undefined variable 'X'", if the message has one.
pub fn missing_name(message: &str) -> Option<String> {
    for marker in ["undefined variable '", "attribute '"] {
        for (at, _) in message.match_indices(marker) {
            let rest = &message[at + marker.len()..];
            if let Some((name, tail)) = rest.split_once('\'') {
                let is_missing = marker.starts_with("undefined") || tail.starts_with(" missing");
                if is_missing && !name.is_empty() && !name.contains('\n') {
                    return Some(name.to_string());
                }
            }
        }
    }
    None
}

/// The path below `modulesPath` that Nix could not find (a host imports an upstream module the
/// surface has no stand-in for), relative to it.
pub fn missing_upstream_module(message: &str) -> Option<String> {
    for marker in ["getting status of '", "path '"] {
        for (at, _) in message.match_indices(marker) {
            let rest = &message[at + marker.len()..];
            let Some((path, tail)) = rest.split_once('\'') else {
                continue;
            };
            let missing = tail.starts_with(": No such file or directory") || tail.starts_with(" does not exist");
            // `modulesPath + "/x"` keeps the directory's path; "${modulesPath}/x" copies it to
            // the store as <hash>-modules-path.
            let below = path.split_once("/modules-path/").or_else(|| path.split_once("-modules-path/"));
            if let (true, Some((_, rel))) = (missing, below) {
                let rel = rel.trim_end_matches('/');
                if !rel.is_empty() && !rel.split('/').any(|c| c == ".." || c == "." || c.is_empty()) && !rel.contains('\n') {
                    return Some(rel.to_string());
                }
            }
        }
    }
    None
}

/// Writes `dir/modules-path`: a copy of the surface's stand-ins for upstream modules
/// (`surface`, checks/surface/modules-path) and, for each path in `missing`, a generated one that
/// accepts the import and names it as an effect not judged (`_unmodelled.nix`).
pub fn write_modules_path(dir: &Path, surface: &Path, missing: &BTreeSet<String>) -> Result<PathBuf> {
    let root = dir.join("modules-path");
    let io = |p: &Path, e: std::io::Error| Error::Other(format!("{}: {e}", p.display()));
    if root.exists() {
        std::fs::remove_dir_all(&root).map_err(|e| io(&root, e))?;
    }
    copy_tree(surface, &root).map_err(|e| io(surface, e))?;
    for rel in missing {
        let file = root.join(rel);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let up = "../".repeat(rel.matches('/').count());
        let text = format!(
            "# Generated by paranoid-harness: an upstream module the offline surface has no stand-in for.\nimport ./{up}_unmodelled.nix {} \"\"\n",
            nix_string(rel)
        );
        std::fs::write(&file, text).map_err(|e| io(&file, e))?;
    }
    Ok(root)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Writes the module that hands `names` to the surface (`surface.standInNames`) into `dir`.
pub fn write_names_module(dir: &Path, names: &BTreeSet<String>) -> Result<PathBuf> {
    let path = dir.join("stand-in-names.nix");
    let list: Vec<String> = names.iter().map(|n| nix_string(n)).collect();
    let text = format!(
        "# Written by paranoid-harness: names `pkgs` answers with a stand-in package.\n{{ surface.standInNames = [ {} ]; }}\n",
        list.join(" ")
    );
    std::fs::write(&path, text).map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    Ok(path)
}

fn nix_string(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_default()
        .replace("${", "\\${")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_relative_paths_are_found() {
        let t = tokens("{ pkgs, ... }: { imports = [ ./hw.nix ../common ]; environment.systemPackages = with pkgs; [ vim sudo-rs python3Packages.requests ]; x = \"${pkgs.foo'}\"; }");
        let idents: Vec<&str> = t.iter().filter_map(|t| match t { Token::Ident(s) => Some(*s), _ => None }).collect();
        for n in ["pkgs", "vim", "sudo-rs", "python3Packages", "requests", "foo'"] {
            assert!(idents.contains(&n), "{n} in {idents:?}");
        }
        let paths: Vec<&str> = t.iter().filter_map(|t| match t { Token::Path(s) => Some(*s), _ => None }).collect();
        assert_eq!(paths, vec!["./hw.nix", "../common"]);
    }

    #[test]
    fn imports_by_literal_path_are_scanned_and_keywords_dropped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("common")).unwrap();
        std::fs::write(dir.path().join("host.nix"), "{ pkgs, ... }: { imports = [ ./common ]; x = with pkgs; [ htop ]; }").unwrap();
        std::fs::write(dir.path().join("common/default.nix"), "{ pkgs, ... }: { imports = [ ./more.nix ]; y = pkgs.tmux; }").unwrap();
        std::fs::write(dir.path().join("common/more.nix"), "{ pkgs, ... }: let a = 1; in { z = pkgs.ripgrep; }").unwrap();
        let names = scan(&dir.path().join("host.nix"));
        for n in ["htop", "tmux", "ripgrep"] {
            assert!(names.contains(n), "{n} in {names:?}");
        }
        for k in ["let", "in", "with"] {
            assert!(!names.contains(k), "keyword {k} kept");
        }
    }

    #[test]
    fn missing_upstream_modules_are_read_and_generated() {
        let m = "error: getting status of '/nix/store/abc-source/checks/surface/modules-path/virtualisation/vmware-guest.nix': No such file or directory";
        assert_eq!(missing_upstream_module(m), Some("virtualisation/vmware-guest.nix".into()));
        assert_eq!(missing_upstream_module("error: path '/tmp/x/modules-path/profiles/foo.nix' does not exist"), Some("profiles/foo.nix".into()));
        assert_eq!(missing_upstream_module("error: getting status of '/nix/store/h-modules-path/profiles/foo.nix': No such file or directory"), Some("profiles/foo.nix".into()));
        assert_eq!(missing_upstream_module("error: getting status of '/home/h/hw.nix': No such file or directory"), None);
        assert_eq!(missing_upstream_module("error: getting status of '/x/modules-path/../etc': No such file or directory"), None);
        let dir = tempfile::tempdir().unwrap();
        let surface = dir.path().join("surface");
        std::fs::create_dir_all(surface.join("profiles")).unwrap();
        std::fs::write(surface.join("_unmodelled.nix"), "path: extra: { }").unwrap();
        std::fs::write(surface.join("profiles/qemu-guest.nix"), "{ }").unwrap();
        let root = write_modules_path(dir.path(), &surface, &BTreeSet::from(["virtualisation/vmware-guest.nix".to_string()])).unwrap();
        assert!(root.join("profiles/qemu-guest.nix").is_file());
        let generated = std::fs::read_to_string(root.join("virtualisation/vmware-guest.nix")).unwrap();
        assert!(generated.contains("import ./../_unmodelled.nix \"virtualisation/vmware-guest.nix\""), "{generated}");
    }

    #[test]
    fn nix_missing_names_are_read() {
        assert_eq!(missing_name("error: undefined variable 'vim'\n\n       at /h.nix:3:4"), Some("vim".into()));
        assert_eq!(missing_name("error: attribute 'linux_6_6' missing\n       at /h.nix:1:2"), Some("linux_6_6".into()));
        assert_eq!(missing_name("error: The option `x' does not exist."), None);
        assert_eq!(missing_name("error: attribute 'a' already defined at /x.nix"), None);
    }
}
