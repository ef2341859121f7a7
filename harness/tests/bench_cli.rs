//! `bench` runs both paths on the same permutations and agrees with itself. Not a timed test:
//! the numbers are printed, never asserted (see the report for what this machine measured).

mod common;

use common::{harness, json, stderr};

#[test]
fn bench_measures_both_paths_on_the_same_permutations() {
    let out = harness()
        .args([
            "bench",
            "--strategy",
            "pairwise",
            "--limit",
            "8",
            "--jobs",
            "2",
            "--repeat",
            "2",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = json(&out.stdout);
    assert_eq!(r["permutations"], 8);
    assert_eq!(
        r["single_serial"]["processes"], 8,
        "one process per permutation"
    );
    assert_eq!(r["single_serial"]["jobs"], 1);
    assert_eq!(r["single_parallel"]["jobs"], 2);
    assert!(
        r["batched"]["processes"].as_u64().unwrap() < 8,
        "batched means fewer processes"
    );
    assert_eq!(r["batched"]["runs"].as_array().unwrap().len(), 2);
    for m in ["single_serial", "single_parallel", "batched"] {
        assert!(r[m]["per_second"].as_f64().unwrap() > 0.0, "{m}");
    }
    let ratio = r["ratio"].as_f64().unwrap();
    let expect = r["batched"]["per_second"].as_f64().unwrap()
        / r["single_serial"]["per_second"].as_f64().unwrap();
    assert!((ratio - expect).abs() < 1e-9);
}

#[test]
fn bench_human_output_prints_the_ratio() {
    let out = harness()
        .args([
            "bench",
            "--strategy",
            "pairwise",
            "--limit",
            "4",
            "--repeat",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("permutations/s") && text.contains("ratio (b) / (a, one at a time)"),
        "{text}"
    );
}
