//! The one runtime builder of every run: the in-process storm, the fault
//! run's coordinator and each of its worker processes.

use std::process::ExitCode;

/// A multi-threaded runtime with `threads` threads, timers and I/O; on
/// failure, says why and gives the exit code.
pub fn start(threads: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("cannot start the runtime with {threads} threads: {error}");
            ExitCode::FAILURE
        })
}
