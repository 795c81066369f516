//! `service`: the payments service on 127.0.0.1. In memory by default;
//! `--database URL` shares a PostgreSQL database with other replicas, and
//! `--postgres` starts a throwaway cluster for this process alone. Prints
//! `listening on http://ADDR` on stdout once it accepts connections.

use async_tasks_recorder_pg::cluster::Cluster;
use clap::Parser;
use service::backend::Work;
use service::memory::Memory;
use service::postgres::Postgres;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tokio::net::TcpListener;

/// The payments service.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Options {
    /// Where to listen: a loopback address; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A PostgreSQL database shared with the other replicas (a URL or a
    /// `key=value` connection string).
    #[arg(long, value_name = "URL", conflicts_with = "postgres")]
    database: Option<String>,
    /// PostgreSQL on a throwaway cluster this process starts and removes.
    #[arg(long)]
    postgres: bool,
    /// The lease of an attempt on PostgreSQL, in milliseconds.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    lease_ms: u64,
    /// How long a simulated payment takes, in milliseconds.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    work_ms: u64,
    /// The share of payments that fail, from 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    fail_rate: f64,
}

fn rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{text:?} is not a number from 0 to 1")),
    }
}

fn main() -> ExitCode {
    let options = Options::parse();
    if !options.listen.ip().is_loopback() {
        eprintln!(
            "--listen {}: only loopback addresses are served",
            options.listen
        );
        return ExitCode::from(2);
    }
    service::trace::init();
    // Started before the runtime and dropped after it, so no task of the
    // recorder outlives the cluster it talks to.
    let cluster = match options.postgres.then(Cluster::start).transpose() {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("service: {e}");
            return ExitCode::FAILURE;
        }
    };
    let database = match (&options.database, &cluster) {
        (Some(url), _) => match url.parse() {
            Ok(config) => Some(config),
            Err(e) => {
                eprintln!("--database {url:?}: {e}");
                return ExitCode::from(2);
            }
        },
        (None, Some(cluster)) => Some(cluster.config("postgres")),
        (None, None) => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(run(&options, database));
    drop(runtime);
    drop(cluster);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("service: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: &Options, database: Option<tokio_postgres::Config>) -> Result<(), String> {
    let work = Work {
        delay: Duration::from_millis(options.work_ms),
        fail_rate: options.fail_rate,
    };
    let lease = Duration::from_millis(options.lease_ms);
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", options.listen))?;
    let served = match database {
        Some(config) => {
            let backend = Postgres::open(config, lease, work).await?;
            announce(&listener, "postgres")?;
            service::serve(listener, backend, stopped()).await
        }
        None => {
            announce(&listener, "memory")?;
            service::serve(listener, Memory::new(work), stopped()).await
        }
    };
    served.map_err(|e| e.to_string())
}

/// The line tests and scripts wait for.
fn announce(listener: &TcpListener, backend: &str) -> Result<(), String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{addr} ({backend})")
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())?;
    tracing::info!(%addr, backend, "listening");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stopped() {
    let interrupt = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = interrupt => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = interrupt.await;
        }
    }
}
