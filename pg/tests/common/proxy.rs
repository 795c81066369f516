//! A Unix-socket proxy in front of the test cluster, for half-failures: it
//! forwards every connection to the server's socket until [`Proxy::cut`],
//! which closes the client side of every connection open then while
//! keeping its server side open, so the server goes on running whatever
//! statement it was running (as after a network cut that only the client
//! noticed). Connections made after a cut are forwarded again.
//!
//! [`Proxy::freeze`] is a partition that neither answers nor resets: every
//! byte in either direction is held, on open connections and new ones
//! alike (a new one is accepted and never answered), until
//! [`Proxy::thaw`].

use async_tasks_recorder_pg::cluster::Cluster;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The server's socket file name in its socket directory (default port).
const SOCKET: &str = ".s.PGSQL.5432";

pub struct Proxy {
    dir: PathBuf,
    /// Cancelled by a cut; every connection watches the token current when
    /// it was accepted.
    cut: Arc<Mutex<CancellationToken>>,
    /// True while frozen.
    frozen: watch::Sender<bool>,
    stop: CancellationToken,
}

impl Proxy {
    /// A proxy listening in a fresh directory, forwarding to `cluster`.
    pub fn start(cluster: &Cluster) -> Proxy {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("atr-proxy-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the proxy's directory");
        let _ = std::fs::remove_file(dir.join(SOCKET));
        let listener = UnixListener::bind(dir.join(SOCKET)).expect("the proxy's socket");
        let upstream = cluster.socket_dir().join(SOCKET);
        let cut = Arc::new(Mutex::new(CancellationToken::new()));
        let stop = CancellationToken::new();
        let frozen = watch::Sender::new(false);
        let (cuts, stopped, freezes) = (cut.clone(), stop.clone(), frozen.clone());
        tokio::spawn(async move {
            loop {
                let client = tokio::select! {
                    _ = stopped.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => return,
                    },
                };
                let token = cuts.lock().unwrap().clone();
                let (upstream, stopped) = (upstream.clone(), stopped.clone());
                let frozen = freezes.subscribe();
                tokio::spawn(forward(client, upstream, token, frozen, stopped));
            }
        });
        Proxy {
            dir,
            cut,
            frozen,
            stop,
        }
    }

    /// Holds every byte in either direction, closing nothing, until
    /// [`thaw`](Self::thaw).
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Forwards again, the held bytes first.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }

    /// The directory to give as the connection's host.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A connection config of `cluster`'s `postgres` database through this
    /// proxy.
    pub fn config(&self, cluster: &Cluster) -> tokio_postgres::Config {
        let direct = cluster.config("postgres");
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.dir())
            .user(direct.get_user().expect("the cluster's user"))
            .dbname("postgres");
        config
    }

    /// Closes the client side of every connection open now; their server
    /// sides stay open until the proxy is dropped.
    pub fn cut(&self) {
        let mut current = self.cut.lock().unwrap();
        current.cancel();
        *current = CancellationToken::new();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until the proxy is not frozen.
async fn thawed(frozen: &mut watch::Receiver<bool>) {
    let _ = frozen.wait_for(|frozen| !frozen).await;
}

/// Copies `from` to `to` until `from` closes, holding each chunk while
/// the proxy is frozen.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                thawed(&mut frozen).await;
                if to.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Pumps bytes between `client` and the server until either side closes,
/// or until `cut`: then the client's side is closed and the server's kept
/// open until `stop`. A connection accepted while frozen reaches the
/// server only once thawed.
async fn forward(
    client: UnixStream,
    upstream: PathBuf,
    cut: CancellationToken,
    mut frozen: watch::Receiver<bool>,
    stop: CancellationToken,
) {
    thawed(&mut frozen).await;
    let Ok(server) = UnixStream::connect(&upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let pumped = async {
        tokio::select! {
            _ = pump(&mut client_read, &mut server_write, frozen.clone()) => {}
            _ = pump(&mut server_read, &mut client_write, frozen.clone()) => {}
        }
    };
    tokio::select! {
        _ = pumped => return,
        _ = cut.cancelled() => {}
    }
    drop((client_read, client_write));
    // The server side stays open and unread: the server finishes its
    // statement and its reply goes nowhere.
    stop.cancelled().await;
    drop((server_read, server_write));
}
