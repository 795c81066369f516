//! How the pools open a connection: as tokio-postgres does, except that
//! the task driving the connection closes it at the first `WARNING` the
//! server sends, before the statement's answer is read.
//!
//! The warning that matters is the cancelled synchronous wait: a commit
//! whose wait for the synchronous standby was cancelled (a query cancel,
//! an operator's `pg_cancel_backend`) is "already committed locally, but
//! might not have been replicated to the standby", and the server answers
//! the statement as if nothing happened. A promotion can then lose it. The
//! warning comes after the statement's rows and before the end of its
//! answer (the commit happens there), so closing the connection turns the
//! answer into a broken connection: a write is in doubt, a grant is given
//! up, a finish is resolved by a read confirmed by a replicated write of
//! its own (`attempt.rs`). No statement of this crate warns otherwise.

use deadpool_postgres::Connect;
use std::future::Future;
use std::pin::Pin;
use tokio::task::JoinHandle;
use tokio_postgres::error::Severity;
use tokio_postgres::{AsyncMessage, Client, Config, Error, NoTls};

/// Opens connections whose answers never hide a warning.
pub(crate) struct ClosingOnWarnings;

impl Connect for ClosingOnWarnings {
    fn connect(
        &self,
        config: &Config,
    ) -> Pin<Box<dyn Future<Output = Result<(Client, JoinHandle<()>), Error>> + Send + '_>> {
        let config = config.clone();
        Box::pin(async move {
            let (client, mut connection) = config.connect(NoTls).await?;
            let driver = tokio::spawn(async move {
                loop {
                    match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                        Some(Ok(AsyncMessage::Notice(notice)))
                            if notice.parsed_severity() == Some(Severity::Warning) =>
                        {
                            return;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return,
                    }
                }
            });
            Ok((client, driver))
        })
    }
}
