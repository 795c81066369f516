//! Turns criterion's output into `benches/results/summary.md` and one SVG
//! plot of throughput against threads per key distribution.
//!
//! ```text
//! cargo bench                                   # or BENCH_QUICK=1 cargo bench
//! cargo run --release -p bench-report           # [-- --criterion DIR --out DIR]
//! ```
//!
//! It reads every `<criterion>/**/new/{benchmark,estimates}.json` of the
//! groups the benches write (names from the `bench_report` library), takes
//! the median as ns per operation, and gives each workload as a ratio to the
//! raw scc map and to `async_tasks_recorder` 2.0.2, all figures coming from
//! one run. A result the run should hold and does not is an error naming it.

mod machine;
mod plot;
mod read;
mod summary;
mod targets;

use bench_report::Keys;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Writes the benchmark summary and plots from criterion's output.
#[derive(Parser)]
struct Options {
    /// Criterion's output directory [default: $CARGO_TARGET_DIR/criterion or target/criterion].
    #[arg(long)]
    criterion: Option<PathBuf>,
    /// Where summary.md and the plots go.
    #[arg(long, default_value = "benches/results")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let options = Options::parse();
    match run(&options) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("bench-report: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<String, String> {
    let criterion = options
        .criterion
        .clone()
        .unwrap_or_else(bench_report::criterion_dir);
    let run = read::read_run(&criterion)?;
    if !run.ignored.is_empty() {
        eprintln!(
            "bench-report: not read, no bench writes these names: {}",
            run.ignored.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let cores = machine::cores();
    let mut plots = Vec::new();
    for keys in Keys::ALL {
        let file = plot::file_name(keys);
        let path = out.join(&file);
        let svg = plot::svg(&run, keys, cores)?;
        std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        plots.push((keys, file));
    }
    let machine = machine::describe();
    let date = machine::today();
    let text = summary::summary(
        &run,
        &summary::Context {
            machine: &machine,
            date: &date,
            cores,
            plots: &plots,
        },
    );
    let path = out.join("summary.md");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!(
        "wrote {} and {} plots from the {} run in {}",
        path.display(),
        plots.len(),
        run.mode.as_str(),
        criterion.display()
    ))
}
