//! A throwaway PostgreSQL cluster for tests, benchmarks, examples and fault
//! runs: `initdb` into a temporary directory, a Unix socket only (no TCP
//! listener), `fsync` and `synchronous_commit` on.
//!
//! The server binaries are the installed ones (`/usr/lib/postgresql/*/bin`,
//! not on `PATH` on Debian); nothing is downloaded. PostgreSQL refuses to
//! run as root, so under root the directories are handed to the `postgres`
//! user and every server binary runs through `runuser -u postgres --`.
//!
//! The server is stopped by [`Cluster`]'s `Drop` (also when a test panics)
//! and, should the owning process die without unwinding (a `static`, an
//! abort, a kill), by a watchdog process that polls the owner's pid and then
//! stops the server and removes the directory.
//!
//! A [`Pooler`] puts the installed PgBouncer in front of a cluster, in
//! transaction mode, for the tests and fault runs of
//! [`Config::pooler`](crate::Config::pooler); it is stopped the same two
//! ways.

mod standby;

pub use standby::Replication;

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Why a cluster could not be set up or driven.
#[derive(Debug)]
pub enum ClusterError {
    /// No `initdb` under `/usr/lib/postgresql/*/bin` (nor `$ATR_PG_BIN`).
    NoBinaries,
    /// A file-system step failed.
    Io(String, std::io::Error),
    /// A server binary exited with an error; its output is attached.
    Command(String, String),
    /// No `pgbouncer` on `PATH`, in `/usr/sbin`, nor at `$ATR_PGBOUNCER`.
    NoPgBouncer,
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::NoBinaries => write!(
                f,
                "no PostgreSQL server binaries: no /usr/lib/postgresql/*/bin/initdb \
                 (install the Debian package `postgresql`: \
                 apt-get update && apt-get install -y postgresql, or set ATR_PG_BIN)"
            ),
            ClusterError::Io(what, e) => write!(f, "{what}: {e}"),
            ClusterError::Command(what, output) => write!(f, "{what} failed:\n{output}"),
            ClusterError::NoPgBouncer => write!(
                f,
                "no pgbouncer on PATH or in /usr/sbin (install the Debian package \
                 `pgbouncer`: bash .ci/postgres.sh does, or set ATR_PGBOUNCER)"
            ),
        }
    }
}

impl std::error::Error for ClusterError {}

/// A running (or stopped) throwaway cluster. Dropping it stops the server
/// and removes its directory.
pub struct Cluster {
    bin: PathBuf,
    root: PathBuf,
    as_postgres: bool,
    watchdog: Option<Child>,
}

/// The role the clusters are created with (a superuser, trust auth over the socket).
pub const USER: &str = "atr";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The directory of the newest installed server binaries.
pub fn find_binaries() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("ATR_PG_BIN") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| ClusterError::NoBinaries)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(ClusterError::NoBinaries)
}

fn io<T>(what: impl Into<String>, r: std::io::Result<T>) -> Result<T, ClusterError> {
    r.map_err(|e| ClusterError::Io(what.into(), e))
}

impl Cluster {
    /// `initdb` a new cluster in a fresh temporary directory and start it.
    pub fn start() -> Result<Cluster, ClusterError> {
        let cluster = Cluster::empty()?;
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-instructions",
            ],
        )?;
        cluster.configure(&format!(
            "listen_addresses = ''\nunix_socket_directories = '{}'\n\
             fsync = on\nsynchronous_commit = on\nmax_connections = 200\n",
            path_str(&cluster.socket_dir())
        ))?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// A fresh temporary directory for a cluster, owned by the server's
    /// user, with its watchdog; no data directory yet.
    fn empty() -> Result<Cluster, ClusterError> {
        let bin = find_binaries()?;
        let as_postgres = is_root();
        let root = std::env::temp_dir().join(format!(
            "atr-pg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        if root.exists() {
            io("remove stale cluster dir", fs::remove_dir_all(&root))?;
        }
        io("create cluster dir", fs::create_dir_all(root.join("sock")))?;
        let mut cluster = Cluster {
            bin,
            root,
            as_postgres,
            watchdog: None,
        };
        if as_postgres {
            cluster.hand_to_postgres()?;
        }
        cluster.watchdog = Some(cluster.spawn_watchdog()?);
        Ok(cluster)
    }

    /// Appends `settings` to the server's `postgresql.conf`.
    fn configure(&self, settings: &str) -> Result<(), ClusterError> {
        let conf_path = self.data_dir().join("postgresql.conf");
        let mut text = io("read postgresql.conf", fs::read_to_string(&conf_path))?;
        text.push_str("\n# throwaway cluster\n");
        text.push_str(settings);
        io("write postgresql.conf", fs::write(&conf_path, text))
    }

    /// The directory holding the server's Unix socket: the `host` to connect to.
    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("sock")
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The directory holding the server binaries (`pgbench` is beside them
    /// on some installs, on `PATH` on Debian).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// A client configuration for database `dbname` over the socket.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.socket_dir())
            .user(USER)
            .dbname(dbname)
            .application_name("async_tasks_recorder_pg");
        config
    }

    /// A libpq connection string for tools such as `psql` and `pgbench`.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host={} user={USER} dbname={dbname}",
            path_str(&self.socket_dir())
        )
    }

    /// Starts the server (after [`stop`](Self::stop)); waits until it accepts connections.
    pub fn start_server(&self) -> Result<(), ClusterError> {
        let data = self.data_dir();
        let log = self.root.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .map_err(|e| {
            let log = fs::read_to_string(&log).unwrap_or_default();
            ClusterError::Command(format!("{e}"), log)
        })?;
        Ok(())
    }

    /// Stops the server with `mode`: `"fast"` (clean) or `"immediate"` (a
    /// crash: no checkpoint, recovery at the next start).
    pub fn stop(&self, mode: &str) -> Result<(), ClusterError> {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", mode, "-w", "-t", "60", "stop"],
        )
    }

    /// `stop -m immediate`, then start: a crash and the recovery after it.
    pub fn crash_restart(&self) -> Result<(), ClusterError> {
        self.stop("immediate")?;
        self.start_server()
    }

    /// Runs `sql` through `psql` (for setup outside the client, e.g. `CREATE DATABASE`).
    pub fn psql(&self, dbname: &str, sql: &str) -> Result<String, ClusterError> {
        self.psql_with(dbname, sql, &[])
    }

    /// The unaligned, header-less output of `sql` through `psql`.
    pub fn psql_value(&self, dbname: &str, sql: &str) -> Result<String, ClusterError> {
        self.psql_with(dbname, sql, &["-A", "-t"])
    }

    fn psql_with(&self, dbname: &str, sql: &str, flags: &[&str]) -> Result<String, ClusterError> {
        let output = Command::new(self.tool("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(flags)
            .arg("-d")
            .arg(self.conninfo(dbname))
            .args(["-c", sql])
            .output();
        let output = io("run psql", output)?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            Ok(text)
        } else {
            Err(ClusterError::Command(format!("psql -c {sql}"), text))
        }
    }

    /// The path of a client tool (`psql`, `pgbench`): beside the server
    /// binaries if there, else from `PATH`.
    pub fn tool(&self, name: &str) -> PathBuf {
        let beside = self.bin.join(name);
        if beside.exists() {
            beside
        } else {
            PathBuf::from(name)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), ClusterError> {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.args(args).stdin(Stdio::null());
        let output = io(format!("run {tool}"), command.output())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(ClusterError::Command(
                format!("{tool} {}", args.join(" ")),
                String::from_utf8_lossy(&output.stdout).into_owned()
                    + &String::from_utf8_lossy(&output.stderr),
            ))
        }
    }

    /// Under root: the `postgres` user must own the cluster directories.
    fn hand_to_postgres(&self) -> Result<(), ClusterError> {
        let (uid, gid) = postgres_ids()?;
        for dir in [self.root.clone(), self.socket_dir()] {
            io(
                "chown cluster dir",
                std::os::unix::fs::chown(&dir, Some(uid), Some(gid)),
            )?;
            io(
                "chmod cluster dir",
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)),
            )?;
        }
        Ok(())
    }

    /// A detached shell that waits for this process to end, then stops the
    /// server (immediate) and removes the directory. `Drop` ends it first
    /// when the cluster is dropped normally.
    fn spawn_watchdog(&self) -> Result<Child, ClusterError> {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = format!(
            "{}'{}' -D '{}' -m immediate -w stop",
            if self.as_postgres {
                "runuser -u postgres -- "
            } else {
                ""
            },
            path_str(&pg_ctl),
            path_str(&self.data_dir())
        );
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             if [ -f '{data}/postmaster.pid' ]; then {stop} >/dev/null 2>&1; fi; \
             rm -rf '{root}'",
            pid = std::process::id(),
            data = path_str(&self.data_dir()),
            root = path_str(&self.root),
        );
        io(
            "spawn the cluster watchdog",
            Command::new("setsid")
                .args(["sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn(),
        )
    }
}

/// A PgBouncer in front of a [`Cluster`]: `pool_mode = transaction`, a
/// pool of a given number of server connections, a Unix socket only, trust
/// auth for the cluster's [`USER`]. Under root it runs as the `postgres`
/// user, as the cluster does. Dropping it stops it and removes its
/// directory; a watchdog does the same if the owning process dies.
pub struct Pooler {
    root: PathBuf,
    process: Child,
    watchdog: Option<Child>,
}

/// The port in the pooler's socket name (`.s.PGSQL.6432`).
pub const POOLER_PORT: u16 = 6432;

/// The installed `pgbouncer`.
fn find_pgbouncer() -> Result<PathBuf, ClusterError> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    std::env::var_os("ATR_PGBOUNCER")
        .map(PathBuf::from)
        .into_iter()
        .chain(on_path.into_iter().map(|dir| dir.join("pgbouncer")))
        .chain([PathBuf::from("/usr/sbin/pgbouncer")])
        .find(|candidate| candidate.is_file())
        .ok_or(ClusterError::NoPgBouncer)
}

impl Pooler {
    /// Starts a PgBouncer in transaction mode with `pool_size` server
    /// connections in front of `cluster`; waits until it listens.
    pub fn start(cluster: &Cluster, pool_size: usize) -> Result<Pooler, ClusterError> {
        let binary = find_pgbouncer()?;
        let root = std::env::temp_dir().join(format!(
            "atr-pgbouncer-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        if root.exists() {
            io("remove stale pooler dir", fs::remove_dir_all(&root))?;
        }
        io("create pooler dir", fs::create_dir_all(&root))?;
        let config = format!(
            "[databases]\n* = host={upstream} port=5432\n\n[pgbouncer]\n\
             listen_addr =\nlisten_port = {POOLER_PORT}\nunix_socket_dir = {dir}\n\
             auth_type = trust\nauth_file = {dir}/userlist.txt\n\
             pool_mode = transaction\ndefault_pool_size = {size}\nmax_db_connections = {size}\n\
             max_client_conn = 1000\nlogfile = {dir}/pgbouncer.log\n",
            upstream = path_str(&cluster.socket_dir()),
            dir = path_str(&root),
            size = pool_size.max(1),
        );
        io(
            "write pgbouncer.ini",
            fs::write(root.join("pgbouncer.ini"), config),
        )?;
        io(
            "write userlist.txt",
            fs::write(root.join("userlist.txt"), format!("\"{USER}\" \"\"\n")),
        )?;
        let as_postgres = is_root();
        if as_postgres {
            let (uid, gid) = postgres_ids()?;
            for entry in ["", "pgbouncer.ini", "userlist.txt"] {
                io(
                    "chown pooler dir",
                    std::os::unix::fs::chown(root.join(entry), Some(uid), Some(gid)),
                )?;
            }
        }
        let mut command = Command::new(&binary);
        if as_postgres {
            // PgBouncer refuses to run as root; `-u` drops to the user itself,
            // so the child's pid is the pooler's.
            command.args(["-u", "postgres"]);
        }
        let process = io(
            "start pgbouncer",
            command
                .arg(root.join("pgbouncer.ini"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn(),
        )?;
        let mut pooler = Pooler {
            root,
            process,
            watchdog: None,
        };
        pooler.watchdog = Some(pooler.spawn_watchdog()?);
        pooler.wait_listening()?;
        Ok(pooler)
    }

    /// Waits up to 10 s until the socket takes a connection, failing with
    /// the log if the process exits first. (The socket's file appears at
    /// its `bind`, before its `listen`: a connection then is refused.)
    fn wait_listening(&mut self) -> Result<(), ClusterError> {
        let socket = self.socket_dir().join(format!(".s.PGSQL.{POOLER_PORT}"));
        let log = || fs::read_to_string(self.root.join("pgbouncer.log")).unwrap_or_default();
        for _ in 0..1000 {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.process.try_wait() {
                return Err(ClusterError::Command(
                    format!("pgbouncer exited with {status}"),
                    log(),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err(ClusterError::Command(
            "pgbouncer did not listen within 10 s".into(),
            log(),
        ))
    }

    /// The directory holding the pooler's Unix socket: the `host` to
    /// connect to, with port [`POOLER_PORT`].
    pub fn socket_dir(&self) -> PathBuf {
        self.root.clone()
    }

    /// A client configuration for database `dbname` through the pooler.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.socket_dir())
            .port(POOLER_PORT)
            .user(USER)
            .dbname(dbname)
            .application_name("async_tasks_recorder_pg");
        config
    }

    /// A libpq connection string through the pooler.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host={} port={POOLER_PORT} user={USER} dbname={dbname}",
            path_str(&self.socket_dir())
        )
    }

    /// A detached shell that waits for this process to end, then stops the
    /// pooler and removes its directory.
    fn spawn_watchdog(&self) -> Result<Child, ClusterError> {
        let script = format!(
            "while kill -0 {owner} 2>/dev/null; do sleep 1; done; \
             kill -9 {pooler} 2>/dev/null; rm -rf '{root}'",
            owner = std::process::id(),
            pooler = self.process.id(),
            root = path_str(&self.root),
        );
        io(
            "spawn the pooler watchdog",
            Command::new("setsid")
                .args(["sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn(),
        )
    }
}

impl Drop for Pooler {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() {
            let _ = self.stop("fast").or_else(|_| self.stop("immediate"));
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

/// Whether this process runs as root (read from `/proc/self/status`, so no
/// `libc` dependency is needed).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// The uid and gid of the `postgres` user, from `/etc/passwd`.
fn postgres_ids() -> Result<(u32, u32), ClusterError> {
    let passwd = io("read /etc/passwd", fs::read_to_string("/etc/passwd"))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<_> = line.split(':').collect();
            (fields.first() == Some(&"postgres"))
                .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
                .flatten()
        })
        .ok_or_else(|| {
            ClusterError::Command(
                "find the postgres user".into(),
                "no `postgres` user in /etc/passwd; the Debian package `postgresql` creates it"
                    .into(),
            )
        })
}
