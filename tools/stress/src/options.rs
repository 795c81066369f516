//! The command line. Every option has a bounded range, checked before the
//! run allocates anything, so a bad value is a usage error (exit code 2)
//! naming the option, never a panic, an abort or a run that cannot end.

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use serde::{Deserialize, Serialize};

/// Most distinct ids: the ledger keeps 8 bytes per id and the audit a few
/// more; a run at this bound peaks near 1 GB.
pub const MAX_IDS: u64 = 100_000_000;
/// Most launch attempts: about a day at 10^5 launches per second.
pub const MAX_LAUNCHES: u64 = 10_000_000_000;
/// Most worker tasks.
pub const MAX_WORKERS: u64 = 4096;
/// Most runtime threads: each is an OS thread with its own stack.
pub const MAX_THREADS: u64 = 1024;
/// Most queries, revokes or waits per launch attempt: the run ends when
/// its launches are done, so a larger ratio would keep it from ending.
pub const MAX_PER_LAUNCH: f64 = 100.0;
/// Longest run, in seconds: one day.
pub const MAX_DURATION: f64 = 86_400.0;
/// Slack when checking that two rates given in decimal sum to at most 1.
const RATE_SUM_SLACK: f64 = 1e-9;

/// Options of the storm. A postgres run hands them to each worker process
/// as JSON (see `postgres::workers`), with the worker's own slot, seed and
/// remaining duration set; what only the coordinator reads is skipped.
#[derive(Parser, Serialize, Deserialize, Debug, Clone)]
#[command(about = "A launch-fail-retry storm on AsyncTasksRecorder, then an invariant audit.")]
pub struct Options {
    /// Distinct task ids [1..=100000000].
    #[arg(long, allow_negative_numbers = true, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=MAX_IDS))]
    pub ids: u64,
    /// Launch attempts in total; queries, revokes and waits come on top [0..=10^10].
    #[arg(long, allow_negative_numbers = true, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(0..=MAX_LAUNCHES))]
    pub launches: u64,
    /// Concurrent worker tasks [1..=4096].
    #[arg(long, allow_negative_numbers = true, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=MAX_WORKERS))]
    pub workers: u64,
    /// Runtime threads [1..=1024; default: available parallelism].
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=MAX_THREADS))]
    #[serde(skip)]
    pub threads: Option<u64>,
    /// Share of tasks returning `Err` [0..=1; with --panic-rate, at most 1].
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.30, value_parser = rate)]
    pub fail_rate: f64,
    /// Share of tasks that panic [0..=1; with --fail-rate, at most 1].
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.02, value_parser = rate)]
    pub panic_rate: f64,
    /// Share of launches whose caller drops the `launch_block` future mid-task [0..=1].
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.02, value_parser = rate)]
    pub cancel_rate: f64,
    /// Queries per launch attempt [0..=100].
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0, value_parser = per_launch)]
    pub queries: f64,
    /// Revokes per launch attempt; they reopen succeeded ids to launches [0..=100].
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.25, value_parser = per_launch)]
    pub revokes: f64,
    /// Share of revoke futures returning `Err`; the id stays `Success` [0..=1].
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.10, value_parser = rate)]
    pub revoke_fail_rate: f64,
    /// Waits per launch attempt [0..=100].
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.02, value_parser = per_launch)]
    pub waits: f64,
    /// Stop launching after this many seconds, even if launches remain
    /// [above 0, at most 86400].
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", value_parser = seconds)]
    pub duration: Option<f64>,
    /// Seed of every worker's operation sequence.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the result as JSON on stdout, without a progress bar.
    #[arg(long)]
    #[serde(skip)]
    pub json: bool,
    /// Write the postgres run's timeline to PATH as SVG: operations and
    /// successes per second, each fault marked [postgres only].
    #[arg(long, value_name = "PATH")]
    #[serde(skip)]
    pub timeline: Option<std::path::PathBuf>,
    /// The recorder under stress: `memory` (this process) or `postgres`
    /// (several processes sharing one database).
    #[arg(long, value_enum, default_value_t = BackendKind::Memory)]
    pub backend: BackendKind,
    /// Operating-system processes sharing the database [1..=64; postgres only].
    #[arg(long, allow_negative_numbers = true, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub processes: u64,
    /// The database (a libpq key=value string or URL); without it a
    /// throwaway cluster is started and removed [postgres only].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Reach the database through PgBouncer in transaction mode, started in
    /// front of the run's own cluster with a pool of 8 server connections:
    /// the recorders send unnamed statements and set nothing at start-up
    /// [postgres only; not with --database-url].
    #[arg(long)]
    #[serde(default)]
    pub pooler: bool,
    /// The lease of every claim, in milliseconds [100..=60000; postgres only].
    #[arg(long, allow_negative_numbers = true, default_value_t = 1500, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub lease_ms: u64,
    /// Fault: kill -9 a random worker process every SECS and start a fresh one.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = seconds)]
    pub kill_every: Option<f64>,
    /// Fault: every SECS (once the last one woke), a worker process freezes
    /// with SIGSTOP right after its next granted claim, for three leases,
    /// then goes on with SIGCONT.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = seconds)]
    pub zombie_every: Option<f64>,
    /// Fault: every SECS, pg_terminate_backend on every worker connection.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = seconds)]
    pub terminate_every: Option<f64>,
    /// Fault: every SECS, `pg_ctl stop -m immediate` and restart (own cluster only).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = seconds)]
    pub crash_every: Option<f64>,
    /// Fault: every SECS, the primary dies and its standby is promoted; the
    /// old primary comes back as the new standby (own cluster only: the run
    /// starts a standby).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = seconds)]
    pub failover_every: Option<f64>,
    /// How the standby of `--failover-every` replicates: `sync` (the
    /// primary waits for it) or `async` (the control, whose promotions can
    /// lose acknowledged successes).
    #[arg(long, value_enum, default_value_t = ReplicationMode::Sync)]
    #[serde(default)]
    pub replication: ReplicationMode,
    /// The slot of this worker process in a postgres run: set by the
    /// coordinator in the options it hands the worker, never on the command
    /// line, and absent from the report.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<u64>,
    /// Known-bad protocol, to show the audit catches it: `unfenced` finishes
    /// ignore the fence; `client-clock` lets process 0 judge leases by its
    /// own clock, running ahead by twice the lease.
    #[arg(long, hide = true, value_enum)]
    pub sabotage: Option<Sabotage>,
}

/// Which recorder the run drives.
#[derive(clap::ValueEnum, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// The in-memory recorder, in this process.
    Memory,
    /// `async_tasks_recorder_pg`, shared by `--processes` processes.
    Postgres,
}

/// How a run's standby replicates.
#[derive(clap::ValueEnum, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicationMode {
    /// The primary waits for the standby.
    #[default]
    Sync,
    /// The standby follows when it can.
    Async,
}

/// A known-bad protocol the audit must catch.
#[derive(clap::ValueEnum, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Sabotage {
    /// The finish statement ignores the fence.
    Unfenced,
    /// Claims judge leases by a client clock running ahead.
    ClientClock,
}

impl Options {
    /// Parses the command line; on a bad value prints clap's usage error
    /// and exits with code 2.
    pub fn from_args() -> Self {
        let options = Self::parse();
        if let Err(message) = options.check() {
            Self::command()
                .error(ErrorKind::ArgumentConflict, message)
                .exit();
        }
        options
    }

    /// The rules between options, which one value parser cannot see.
    pub fn check(&self) -> Result<(), String> {
        let sum = self.fail_rate + self.panic_rate;
        if sum > 1.0 + RATE_SUM_SLACK {
            return Err(format!(
                "--fail-rate {} plus --panic-rate {} is {sum}: the two rates must sum to at most 1",
                self.fail_rate, self.panic_rate
            ));
        }
        Ok(())
    }

    /// The runtime threads: as asked, or one per available core.
    pub fn threads(&self) -> usize {
        let asked = self.threads.and_then(|n| usize::try_from(n).ok());
        asked
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .clamp(1, MAX_THREADS as usize)
    }
}

/// A share in 0..=1.
fn rate(text: &str) -> Result<f64, String> {
    number(text)
        .filter(|value| (0.0..=1.0).contains(value))
        .ok_or_else(|| format!("{text} is not a share within 0..=1"))
}

/// A count of operations per launch attempt in 0..=MAX_PER_LAUNCH.
fn per_launch(text: &str) -> Result<f64, String> {
    number(text)
        .filter(|value| (0.0..=MAX_PER_LAUNCH).contains(value))
        .ok_or_else(|| format!("{text} is not a count per launch within 0..={MAX_PER_LAUNCH}"))
}

/// A duration in seconds in (0, MAX_DURATION].
fn seconds(text: &str) -> Result<f64, String> {
    number(text)
        .filter(|value| *value > 0.0 && *value <= MAX_DURATION)
        .ok_or_else(|| {
            format!("{text} is not a number of seconds above 0 and at most {MAX_DURATION}")
        })
}

/// A finite decimal number: `nan` and `inf` parse as floats, but are no
/// sensible value for any option here.
fn number(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("stress").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_the_readme_run() {
        let options = parse(&[]).expect("the defaults parse");
        assert_eq!(
            (options.ids, options.launches, options.workers),
            (100_000, 1_000_000, 8)
        );
        assert_eq!((options.fail_rate, options.panic_rate), (0.30, 0.02));
        assert_eq!(options.check(), Ok(()));
    }

    #[test]
    fn rates_summing_over_one_are_refused_by_name() {
        let options = parse(&["--fail-rate", "0.9", "--panic-rate", "0.9"])
            .expect("each rate alone is in range");
        let message = options.check().expect_err("0.9 + 0.9 > 1");
        assert!(message.contains("--fail-rate") && message.contains("--panic-rate"));
    }

    #[test]
    fn rates_summing_to_exactly_one_in_decimal_are_accepted() {
        let options = parse(&["--fail-rate", "0.7", "--panic-rate", "0.3"]).expect("parses");
        assert_eq!(options.check(), Ok(()));
    }

    #[test]
    fn non_finite_and_out_of_range_numbers_are_refused() {
        for (option, value) in [
            ("--duration", "nan"),
            ("--duration", "inf"),
            ("--duration", "0"),
            ("--duration", "1e19"),
            ("--queries", "1e308"),
            ("--waits", "-1"),
            ("--ids", "-5"),
            ("--cancel-rate", "NaN"),
            ("--fail-rate", "1.5"),
        ] {
            let error = parse(&[option, value]).expect_err(value);
            assert_eq!(error.kind(), ErrorKind::ValueValidation, "{option} {value}");
            assert!(error.to_string().contains(option), "{error}");
        }
    }
}
