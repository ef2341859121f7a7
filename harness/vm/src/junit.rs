//! One JUnit report for the whole run: a test suite per VM check. A passing check contributes
//! the driver's own test cases (one per `subtest`, plus `main`) when its output holds a
//! `junit.xml`; every check also has a test case named after it that carries the verdict,
//! the wall time, earlier failed attempts (as flaky or rerun failures) and, on failure, the
//! tail of its log. (The driver's report of a *failed* test is lost with the failed build's
//! output, so the runner's own test case is the record there.)

use std::path::Path;
use std::time::Duration;

use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use crate::run::{Attempt, CheckResult, RunReport, Status};
use crate::{Result, VmError};

/// The merged report as XML.
pub fn merged(report: &RunReport) -> Result<String> {
    let mut junit = Report::new("paranoid-harness vm");
    junit.set_time(secs(report.wall_seconds));
    for check in &report.checks {
        junit.add_test_suite(suite(check));
    }
    junit
        .to_string()
        .map_err(|e| VmError::Other(format!("cannot serialize the JUnit report: {e}")))
}

/// Writes the merged report to `path`.
pub fn write(report: &RunReport, path: &Path) -> Result<()> {
    let xml = merged(report)?;
    std::fs::write(path, xml).map_err(|e| {
        VmError::Other(format!(
            "cannot write the JUnit report {}: {e}",
            path.display()
        ))
    })
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

fn suite(check: &CheckResult) -> TestSuite {
    let mut suite = TestSuite::new(check.name.as_str());
    suite.set_time(secs(check.seconds));
    suite.add_property(Property::new("status", check.status.as_str()));
    suite.add_property(Property::new("attempts", check.attempts.len().to_string()));
    suite.add_property(Property::new("flaky", check.flaky.to_string()));
    suite.add_property(Property::new(
        "drvPath",
        check.drv_path.display().to_string(),
    ));
    if let Some(log) = &check.log {
        suite.add_property(Property::new("log", log.display().to_string()));
    }

    suite.add_test_case(verdict(check));
    if check.status == Status::Passed {
        if let Some(path) = &check.junit {
            match driver_cases(path) {
                Ok(cases) => {
                    for mut case in cases {
                        case.set_classname(check.name.as_str());
                        suite.add_test_case(case);
                    }
                }
                Err(e) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                    status.set_message(format!(
                        "the driver's JUnit report {} is unreadable",
                        path.display()
                    ));
                    status.set_description(e);
                    let mut case = TestCase::new("driver JUnit report", status);
                    case.set_classname(check.name.as_str());
                    suite.add_test_case(case);
                }
            }
        }
    }
    suite
}

/// The runner's own test case for a check.
fn verdict(check: &CheckResult) -> TestCase {
    let earlier: Vec<&Attempt> = match check.attempts.split_last() {
        Some((_, rest)) => rest.iter().collect(),
        None => Vec::new(),
    };
    let reruns = earlier.iter().enumerate().map(|(i, a)| {
        let mut rerun = TestRerun::new(NonSuccessKind::Failure);
        rerun.set_time(secs(a.seconds));
        rerun.set_message(format!("attempt {} {}", i + 1, a.status.as_str()));
        rerun
    });
    let status = match check.status {
        Status::Passed => TestCaseStatus::Success {
            flaky_runs: reruns.collect(),
        },
        Status::Failed | Status::TimedOut | Status::Interrupted => {
            let kind = if check.status == Status::Failed {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut status = TestCaseStatus::non_success(kind);
            status.set_type(check.status.as_str());
            status.set_message(
                check
                    .reason
                    .clone()
                    .unwrap_or_else(|| check.status.as_str().to_string()),
            );
            let mut description = check.log_tail.join("\n");
            if let Some(log) = &check.log {
                description.push_str(&format!("\n(full log: {})", log.display()));
            }
            status.set_description(description);
            status.add_reruns(reruns);
            status
        }
        Status::Refused | Status::NotRun => {
            let mut status = TestCaseStatus::skipped();
            status.set_type(check.status.as_str());
            status.set_message(
                check
                    .reason
                    .clone()
                    .unwrap_or_else(|| check.status.as_str().to_string()),
            );
            status
        }
    };
    let mut case = TestCase::new(check.name.as_str(), status);
    case.set_classname(check.name.as_str());
    case.set_time(secs(check.seconds));
    case
}

/// The test cases of a driver's JUnit report (`<testsuites>` or a bare `<testsuite>`).
pub fn driver_cases(path: &Path) -> std::result::Result<Vec<TestCase>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let wrapped;
    let xml = if text.contains("<testsuites") {
        text.as_str()
    } else {
        let body = match text.find("?>") {
            Some(end) if text.trim_start().starts_with("<?xml") => &text[end + 2..],
            _ => text.as_str(),
        };
        wrapped = format!("<testsuites>{body}</testsuites>");
        wrapped.as_str()
    };
    let report = Report::deserialize_from_str(xml).map_err(|e| e.to_string())?;
    Ok(report
        .test_suites
        .into_iter()
        .flat_map(|s| s.test_cases)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    // The shape nixos/lib/test-driver's JunitXMLLogger writes (its golden test file).
    const DRIVER: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites tests="3" failures="1" errors="0" skipped="0" time="0">
	<testsuite name="NixOS integration test" tests="3" errors="0" failures="1" skipped="0" time="0">
		<testcase name="my subtest" time="0">
			<system-out>Subtest log
</system-out>
		</testcase>
		<testcase name="failing subtest" time="0">
			<failure message="test case failed"/>
			<system-out>Some output
</system-out>
			<system-err>Error occurred
</system-err>
		</testcase>
		<testcase name="main" time="0"/>
	</testsuite>
</testsuites>
"#;

    fn result(name: &str, status: Status, junit: Option<PathBuf>) -> CheckResult {
        CheckResult {
            name: name.into(),
            status,
            flaky: false,
            attempts: vec![Attempt {
                status,
                seconds: 1.5,
                exit: Some(0),
            }],
            seconds: 1.5,
            drv_path: "/nix/store/x.drv".into(),
            features: vec![],
            log: Some("/tmp/x.log".into()),
            out_path: None,
            junit,
            reason: None,
            log_tail: vec!["last line".into()],
        }
    }

    #[test]
    fn reads_the_drivers_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        std::fs::write(&path, DRIVER).unwrap();
        let cases = driver_cases(&path).unwrap();
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["my subtest", "failing subtest", "main"]);
        assert!(matches!(cases[1].status, TestCaseStatus::NonSuccess { .. }));
    }

    #[test]
    fn a_bare_testsuite_is_accepted_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        std::fs::write(&path, r#"<?xml version="1.0"?><testsuite name="s" tests="1"><testcase name="only"/></testsuite>"#).unwrap();
        assert_eq!(driver_cases(&path).unwrap().len(), 1);
        std::fs::write(&path, "<testsuites><testsuite").unwrap();
        assert!(driver_cases(&path).is_err());
    }

    #[test]
    fn merged_report_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        std::fs::write(&path, DRIVER).unwrap();
        let mut failed = result("vm-b", Status::Failed, None);
        failed.reason = Some("the build failed".into());
        let report = RunReport {
            flake: ".".into(),
            system: "x86_64-linux".into(),
            log_dir: "/tmp".into(),
            jobs: 2,
            wall_seconds: 3.0,
            interrupted: false,
            checks: vec![
                result("vm-a", Status::Passed, Some(path)),
                failed,
                result("vm-c", Status::Refused, None),
            ],
        };
        let xml = merged(&report).unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.test_suites.len(), 3);
        assert_eq!(
            back.test_suites[0].test_cases.len(),
            4,
            "verdict + the driver's three cases"
        );
        assert_eq!(back.tests, 6);
        assert_eq!(back.failures, 2, "the driver's failing subtest and vm-b");
        assert!(xml.contains("last line"));
    }
}
