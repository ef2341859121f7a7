//! The sandbox's kill rate on the weakening catalogue (issue 9 item 3): every entry whose effect
//! a real program can observe here (`observable` names a sandbox check) is sandboxed on its base
//! host plus its weakening, and the named check must fail. The rate (caught/total) is printed,
//! with the entries no program here can observe and why; any survivor fails the test, and the
//! failure lists every survivor with what its check said.

mod common;
mod sandbox_support;
mod weakening_support;

use sandbox_support::{check, evidence_text, require_root, sandbox_json, statuses};
use weakening_support::{catalogue, entry_text, par_map, write, Entry};

/// (caught, what the named check said).
fn sandbox_entry(dir: &std::path::Path, e: &Entry, observable: &str) -> (bool, String) {
    let file = write(dir, &format!("{}.nix", e.id), &entry_text(e));
    let mut args = vec![
        "--module",
        file.to_str().unwrap(),
        "--checks",
        observable,
        // A guard may refuse the weakening at evaluation; the real program must still see it.
        "--ignore-assertions",
    ];
    if observable == "auditd" {
        args.push("--with-auditd");
    }
    let (code, r) = sandbox_json(&args);
    let st = statuses(&r);
    let Some((_, status, summary)) = st.iter().find(|(n, _, _)| n == observable) else {
        return (
            false,
            format!("exit {code}; no {observable} check in {st:?}"),
        );
    };
    let caught = code == 1 && status == "fail";
    let detail = if caught {
        String::new()
    } else {
        format!(
            "exit {code}, {observable} {status}: {summary}\n{}",
            evidence_text(check(&r, observable))
        )
    };
    (caught, detail)
}

#[test]
fn every_observable_weakening_fails_its_sandbox_check() {
    require_root();
    let entries = catalogue();
    let (observable, unobservable): (Vec<&Entry>, Vec<&Entry>) =
        entries.iter().partition(|e| e.observable.is_some());
    assert!(
        !observable.is_empty(),
        "the catalogue has no observable entry"
    );
    let dir = tempfile::tempdir().unwrap();
    // The auditd check changes the kernel's audit state (under a lock): one at a time; the rest
    // two at a time, as the catalogue's other tests run `check`.
    let (audit, rest): (Vec<&Entry>, Vec<&Entry>) = observable
        .iter()
        .partition(|e| e.observable.as_deref() == Some("auditd"));
    let mut results: Vec<(&Entry, (bool, String))> = rest
        .iter()
        .zip(par_map(&rest, |e| {
            sandbox_entry(dir.path(), e, e.observable.as_deref().unwrap())
        }))
        .map(|(e, r)| (*e, r))
        .collect();
    for e in &audit {
        results.push((e, sandbox_entry(dir.path(), e, "auditd")));
    }
    for (e, (c, _)) in &results {
        println!(
            "  {} {} ({})",
            if *c { "caught  " } else { "SURVIVED" },
            e.id,
            e.observable.as_deref().unwrap()
        );
    }
    let caught = results.iter().filter(|(_, (c, _))| *c).count();
    let total = results.len();
    println!("sandbox kill rate: {caught}/{total} observable weakenings caught by the named check");
    let mut by_check: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for (e, (c, _)) in &results {
        let slot = by_check
            .entry(e.observable.as_deref().unwrap())
            .or_default();
        slot.1 += 1;
        if *c {
            slot.0 += 1;
        }
    }
    for (check_name, (c, t)) in &by_check {
        println!("  {check_name}: {c}/{t}");
    }
    println!(
        "not observable here ({} entries, `check` only):",
        unobservable.len()
    );
    for e in &unobservable {
        println!(
            "  {}: {}",
            e.id,
            e.why.as_deref().unwrap_or("(no why given)")
        );
    }
    let missing_why: Vec<&str> = unobservable
        .iter()
        .filter(|e| e.why.as_deref().map(str::trim).unwrap_or("").is_empty())
        .map(|e| e.id.as_str())
        .collect();
    assert!(
        missing_why.is_empty(),
        "entries with observable = null must say why: {missing_why:?}"
    );
    let survivor_ids: Vec<&str> = results
        .iter()
        .filter(|(_, (c, _))| !*c)
        .map(|(e, _)| e.id.as_str())
        .collect();
    println!("survivors: {survivor_ids:?}");
    let survivors: Vec<String> = results
        .iter()
        .filter(|(_, (c, _))| !*c)
        .map(|(e, (_, d))| format!("{} ({}): {d}", e.id, e.observable.as_deref().unwrap()))
        .collect();
    assert!(
        survivors.is_empty(),
        "{} of {total} weakenings survived the sandbox: {survivor_ids:?}\n{}",
        survivors.len(),
        survivors.join("\n\n")
    );
}
