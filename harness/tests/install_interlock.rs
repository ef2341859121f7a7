//! The installer's safety interlock (installer/interlock.sh), run for real on loop devices
//! backed by files these tests create: a blank disk may be partitioned; a partition table, a
//! filesystem signature or plain data refuses it unless the kernel command line names it
//! (paranoid.install.wipe=<device>); a disk in use is refused even when named; bad input exits 2.
//! A refusal writes nothing (the backing file's bytes are compared). Needs root (losetup),
//! util-linux, fdisk (sfdisk) and e2fsprogs (mkfs.ext4); every loop device is detached and
//! every mount lives in a private mount namespace that dies with its process.

mod common;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MIB: u64 = 1024 * 1024;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn interlock() -> PathBuf {
    repo().join("installer/interlock.sh")
}


fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", text(&out.stderr));
    out
}

/// A file-backed disk attached as a loop device (with partition scanning); detached on drop.
struct Disk {
    dir: tempfile::TempDir,
    file: PathBuf,
    dev: String,
}

impl Disk {
    fn new(mib: u64) -> Disk {
        common::require_root("the interlock tests attach loop devices");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("disk.img");
        fs::File::create(&file).unwrap().set_len(mib * MIB).unwrap();
        let out = run(Command::new("losetup").args(["--show", "--find", "--partscan"]).arg(&file));
        let dev = text(&out.stdout).trim().to_string();
        assert!(dev.starts_with("/dev/loop"), "losetup printed {dev:?}");
        Disk { dir, file, dev }
    }

    /// Writes bytes at an offset of the backing file (through the loop device's page cache).
    fn write_at(&self, offset: u64, bytes: &[u8]) {
        let mut f = fs::OpenOptions::new().write(true).open(&self.dev).unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(bytes).unwrap();
        f.sync_all().unwrap();
    }

    fn gpt(&self, script: &str) {
        let mut child = Command::new("sfdisk")
            .args(["--quiet", "--wipe", "always"])
            .arg(&self.dev)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("these tests write partition tables with sfdisk (apt-get install fdisk)");
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "sfdisk: {}", text(&out.stderr));
        // Where the kernel did not rescan the loop device, tell it about the partitions (an
        // error here only means they are there already; part() waits for them either way).
        let _ = Command::new("partx").arg("--add").arg(&self.dev).stderr(Stdio::null()).status();
    }

    fn part(&self, n: u32) -> String {
        let p = format!("{}p{n}", self.dev);
        for _ in 0..50 {
            if Path::new(&p).exists() {
                return p;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{p} did not appear after the partition table was written");
    }

    fn bytes(&self) -> Vec<u8> {
        fs::read(&self.file).unwrap()
    }

    /// A kernel command line in a file of its own.
    fn cmdline(&self, line: &str) -> PathBuf {
        let p = self.dir.path().join(format!("cmdline-{}", line.len()));
        fs::write(&p, format!("{line}\n")).unwrap();
        p
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// interlock.sh --cmdline FILE DEVICE... : (exit code, stdout, stderr).
fn check(cmdline: &Path, devices: &[&str]) -> (i32, String, String) {
    let out = Command::new("bash")
        .arg(interlock())
        .arg("--cmdline")
        .arg(cmdline)
        .args(devices)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_blank_disk_may_be_partitioned() {
    let d = Disk::new(64);
    let (code, out, err) = check(&d.cmdline("quiet"), &[&d.dev]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("{} is blank", d.dev)), "{out}");
}

#[test]
fn a_partition_table_is_refused_unless_the_command_line_names_the_disk() {
    let d = Disk::new(64);
    d.gpt("label: gpt\n,16M\n,\n");
    let before = d.bytes();

    let (code, _, err) = check(&d.cmdline("quiet"), &[&d.dev]);
    assert_eq!(code, 10, "{err}");
    assert!(err.contains("PTTYPE gpt"), "the refusal says what was found: {err}");
    assert!(
        err.contains(&format!("paranoid.install.wipe={}", d.dev)),
        "the refusal names the fix: {err}"
    );
    assert!(d.bytes() == before, "a refusal must write nothing");

    // Another disk named is not this one.
    let (code, _, _) = check(&d.cmdline("paranoid.install.wipe=/dev/sdz9"), &[&d.dev]);
    assert_eq!(code, 10);

    let (code, out, err) = check(&d.cmdline(&format!("quiet paranoid.install.wipe={} splash", d.dev)), &[&d.dev]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("will be wiped"), "{out}");

    // Named through a comma list, by a path that resolves to it (as /dev/disk/by-id links do).
    let link = d.dir.path().join("by-id-link");
    std::os::unix::fs::symlink(&d.dev, &link).unwrap();
    let (code, out, err) = check(
        &d.cmdline(&format!("paranoid.install.wipe=/dev/sdz9,{}", link.display())),
        &[&d.dev],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(d.bytes() == before, "the interlock itself never writes");
}

#[test]
fn a_bare_filesystem_signature_is_refused() {
    let d = Disk::new(64);
    run(Command::new("mkswap").arg("-q").arg(&d.dev));
    let (code, _, err) = check(&d.cmdline("quiet"), &[&d.dev]);
    assert_eq!(code, 10, "{err}");
    assert!(err.contains("TYPE swap"), "{err}");
}

#[test]
fn data_without_any_signature_is_refused() {
    // Bytes no probe recognises, at the start and at the end of the disk (where GPT keeps its
    // backup header), each on its own.
    for (offset, where_) in [(4096, "first MiB"), (64 * MIB - 4096, "last MiB")] {
        let d = Disk::new(64);
        d.write_at(offset, &[0x5a; 512]);
        let (code, _, err) = check(&d.cmdline("quiet"), &[&d.dev]);
        assert_eq!(code, 10, "data at {offset}: {err}");
        assert!(err.contains(where_), "data at {offset}: {err}");
    }
    // The control: data in the middle of the disk is not looked at, so a disk blank at both
    // ends passes (the check is about what a wipe would destroy *by mistake*: tables and
    // filesystems live at the ends).
    let d = Disk::new(64);
    d.write_at(32 * MIB, &[0x5a; 512]);
    let (code, out, err) = check(&d.cmdline("quiet"), &[&d.dev]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_mounted_disk_is_refused_even_when_named() {
    let d = Disk::new(64);
    d.gpt("label: gpt\n,\n");
    let p1 = d.part(1);
    run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&p1));
    let mnt = d.dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let cmdline = d.cmdline(&format!("paranoid.install.wipe={}", d.dev));
    // The mount exists only in this private namespace, where the interlock runs too.
    let script = format!(
        "mount {p1} {mnt} && bash {il} --cmdline {cmd} {dev}",
        mnt = mnt.display(),
        il = interlock().display(),
        cmd = cmdline.display(),
        dev = d.dev
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(11), "{}{}", text(&out.stdout), text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("in use") && err.contains(&mnt.display().to_string()), "{err}");
    // Unmounted (the namespace is gone), the same disk is merely named and may be wiped.
    let (code, out, err) = check(&cmdline, &[&d.dev]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn every_disk_is_checked_and_the_worst_answer_wins() {
    let blank = Disk::new(16);
    let used = Disk::new(16);
    used.gpt("label: gpt\n");
    let (code, out, err) = check(&blank.cmdline("quiet"), &[&blank.dev, &used.dev]);
    assert_eq!(code, 10, "{out}{err}");
    assert!(out.contains(&format!("{} is blank", blank.dev)) && err.contains(&format!("refusing {}", used.dev)));
}

#[test]
fn bad_input_exits_2_with_the_reason() {
    let d = Disk::new(16);
    let cmd = d.cmdline("quiet");
    let (code, _, err) = check(&cmd, &["/dev/paranoid-no-such-disk"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a block device") && err.contains("Fix:"), "{err}");

    let (code, _, err) = check(&cmd, &[d.file.to_str().unwrap()]);
    assert_eq!(code, 2, "a regular file is no disk: {err}");

    let (code, _, err) = check(&d.dir.path().join("no-cmdline"), &[&d.dev]);
    assert_eq!(code, 2);
    assert!(err.contains("kernel command line"), "{err}");

    let out = Command::new("bash").arg(interlock()).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("usage"), "{}", text(&out.stderr));
}
