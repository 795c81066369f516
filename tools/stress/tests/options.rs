//! The stress binary refuses each out-of-range option with a usage error:
//! exit code 2 and a message naming the option and its range, never a
//! panic, an abort or a run that does not end. Each run is bounded in time.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far above what a refused option or a tiny run takes.
const LIMIT: Duration = Duration::from_secs(30);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the stress binary with `args`, killing it past [`LIMIT`].
fn stress(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stress"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the stress binary starts");
    let began = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be polled") {
            break status;
        }
        if began.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`stress {}` still running after {LIMIT:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    Run {
        code: status.code(),
        stdout,
        stderr,
    }
}

/// Asserts `args` is refused as a usage error naming `option` and `range`.
fn refused(args: &[&str], option: &str, range: &str) {
    let run = stress(args);
    let shown = args.join(" ");
    assert_eq!(run.code, Some(2), "`stress {shown}`: {}", run.stderr);
    assert!(
        run.stderr.contains(option),
        "`stress {shown}` does not name {option}: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(range),
        "`stress {shown}` does not give the range {range}: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("panicked"),
        "`stress {shown}`: {}",
        run.stderr
    );
}

#[test]
fn durations_not_finite_or_over_a_day_are_refused() {
    for value in ["inf", "1e300", "1e19", "nan", "-1", "0", "86401"] {
        refused(&["--duration", value], "--duration", "at most 86400");
    }
}

#[test]
fn thread_counts_over_1024_are_refused() {
    for value in ["100000", "18446744073709551615", "0"] {
        refused(&["--threads", value], "--threads", "1..=1024");
    }
}

#[test]
fn id_counts_over_10_to_the_8_are_refused() {
    for value in ["18446744073709551615", "100000000000", "100000001", "0"] {
        refused(&["--ids", value], "--ids", "1..=100000000");
    }
}

#[test]
fn worker_and_launch_counts_out_of_range_are_refused() {
    refused(&["--workers", "4097"], "--workers", "1..=4096");
    refused(
        &["--launches", "10000000001"],
        "--launches",
        "0..=10000000000",
    );
}

#[test]
fn operations_per_launch_over_100_are_refused() {
    refused(&["--queries", "1e308"], "--queries", "0..=100");
    refused(&["--revokes", "101"], "--revokes", "0..=100");
    refused(&["--waits", "-1"], "--waits", "0..=100");
}

#[test]
fn rates_outside_0_to_1_are_refused() {
    refused(&["--fail-rate", "1.5"], "--fail-rate", "0..=1");
    refused(&["--cancel-rate", "nan"], "--cancel-rate", "0..=1");
    refused(
        &["--revoke-fail-rate", "-0.1"],
        "--revoke-fail-rate",
        "0..=1",
    );
}

#[test]
fn failure_and_panic_rates_summing_over_1_are_refused() {
    let args = ["--fail-rate", "0.9", "--panic-rate", "0.9"];
    refused(&args, "--fail-rate", "at most 1");
    refused(&args, "--panic-rate", "at most 1");
}

#[test]
fn a_tiny_run_passes_and_reports_json() {
    let run = stress(&[
        "--ids",
        "50",
        "--launches",
        "500",
        "--workers",
        "2",
        "--threads",
        "2",
        "--json",
    ]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(report["outcomes"]["launch_attempts"], 500);
    assert_eq!(report["options"]["threads"], 2);
    assert_eq!(report["violations"], serde_json::json!([]));
}
