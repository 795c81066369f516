//! The HTTP service our users write: payments keyed by id, started,
//! polled, revoked and listed over HTTP, on the in-memory recorder (one
//! process) or on PostgreSQL (any number of replicas).
//!
//! Modules: [`routes`] (the HTTP face), [`input`] (what it accepts),
//! [`error`] (its error answers), [`backend`] (what the routes ask of a
//! recorder) and its two implementations [`memory`] and [`postgres`],
//! [`metrics`], [`page`] (the operators' HTML page) and [`trace`] (the
//! spans and the subscriber).

pub mod backend;
pub mod error;
pub mod input;
pub mod memory;
pub mod metrics;
pub mod page;
pub mod postgres;
pub mod routes;
pub mod trace;

use std::future::Future;
use tokio::net::TcpListener;

/// Serves the routes over `backend` on `listener` until `shutdown` resolves.
pub async fn serve<B: backend::Backend>(
    listener: TcpListener,
    backend: B,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, routes::router(backend))
        .with_graceful_shutdown(shutdown)
        .await
}
