//! A streaming standby of a throwaway cluster, for failover runs: made with
//! `pg_basebackup` over the primary's Unix socket, promoted with
//! `pg_ctl promote`, and made anew as the standby of the promoted server
//! once the old primary is gone (a fresh base backup: simpler than
//! `pg_rewind`, and as fast for a small test database).
//!
//! Each node's configuration names the other as its synchronous standby
//! when the pair is synchronous; a standby ignores the setting, so it
//! takes effect on whichever node is primary, from its start or its
//! promotion.

use super::{Cluster, ClusterError, USER, io, path_str};
use std::fs;

/// How the primary acknowledges a commit.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Replication {
    /// Once the synchronous standby has flushed it.
    Synchronous,
    /// At once; the standby follows when it can.
    Asynchronous,
}

impl Cluster {
    /// This cluster's name as a standby, in `application_name` and in the
    /// other node's `synchronous_standby_names`.
    pub fn node_name(&self) -> String {
        self.root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("node")
            .replace('-', "_")
    }

    /// A new standby of `primary`, streaming from it, started. With
    /// [`Replication::Synchronous`], `primary` is told to wait for it.
    pub fn standby_of(
        primary: &Cluster,
        replication: Replication,
    ) -> Result<Cluster, ClusterError> {
        let standby = Cluster::empty()?;
        standby.follow(primary, replication)?;
        Ok(standby)
    }

    /// Makes this (stopped or running) node a fresh standby of `primary`:
    /// its data directory is replaced by a base backup, and it is started.
    pub fn follow(&self, primary: &Cluster, replication: Replication) -> Result<(), ClusterError> {
        if self.data_dir().join("postmaster.pid").exists() {
            let _ = self.stop("immediate");
        }
        if self.data_dir().exists() {
            io("remove the old data", fs::remove_dir_all(self.data_dir()))?;
        }
        let conninfo = format!(
            "host={} user={USER} application_name={}",
            path_str(&primary.socket_dir()),
            self.node_name()
        );
        self.run(
            "pg_basebackup",
            &[
                "-D",
                path_str(&self.data_dir()),
                "-d",
                &conninfo,
                "-X",
                "stream",
                "-c",
                "fast",
                "-R",
            ],
        )?;
        let names = match replication {
            Replication::Synchronous => primary.node_name(),
            Replication::Asynchronous => String::new(),
        };
        self.configure(&format!(
            "unix_socket_directories = '{}'\n",
            path_str(&self.socket_dir())
        ))?;
        // The base backup copied the primary's `postgresql.auto.conf`, with
        // the primary's own standby names, which would win over ours.
        let auto = self.data_dir().join("postgresql.auto.conf");
        let text = io("read postgresql.auto.conf", fs::read_to_string(&auto))?;
        let mut kept: String = text
            .lines()
            .filter(|line| !line.starts_with("synchronous_standby_names"))
            .map(|line| format!("{line}\n"))
            .collect();
        kept.push_str(&format!("synchronous_standby_names = '{names}'\n"));
        io("write postgresql.auto.conf", fs::write(&auto, kept))?;
        self.start_server()?;
        let names = match replication {
            Replication::Synchronous => self.node_name(),
            Replication::Asynchronous => String::new(),
        };
        primary.psql(
            "postgres",
            &format!("ALTER SYSTEM SET synchronous_standby_names = '{names}'"),
        )?;
        primary.psql("postgres", "SELECT pg_reload_conf()")?;
        Ok(())
    }

    /// Promotes this standby to primary; waits until it accepts writes.
    ///
    /// A standby whose server is restarting (after one of its processes
    /// died, say) would miss the request, so the request is made once the
    /// standby answers queries, and made again if the promotion has not
    /// happened within a few seconds; all within a minute.
    pub fn promote(&self) -> Result<(), ClusterError> {
        let mut last = None;
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < until {
            match self.psql_value("postgres", "SELECT pg_is_in_recovery()") {
                // Promoted (by an earlier request that outlived its wait).
                Ok(answer) if answer.trim() == "f" => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
            }
            match self.run(
                "pg_ctl",
                &["-D", path_str(&self.data_dir()), "-w", "-t", "5", "promote"],
            ) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            ClusterError::Command("promote".into(), "the standby never answered".into())
        }))
    }

    /// A client configuration for database `dbname` that connects to
    /// whichever of `nodes` accepts writes (the primary), trying them in
    /// turn: clients follow a promotion by reconnecting.
    pub fn primary_config(nodes: &[&Cluster], dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        for node in nodes {
            config.host_path(node.socket_dir());
        }
        config
            .user(USER)
            .dbname(dbname)
            .application_name("async_tasks_recorder_pg")
            .target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite);
        config
    }

    /// The libpq connection string of [`primary_config`](Self::primary_config),
    /// for tools and child processes.
    pub fn primary_conninfo(nodes: &[&Cluster], dbname: &str) -> String {
        let hosts: Vec<String> = nodes
            .iter()
            .map(|node| path_str(&node.socket_dir()).to_owned())
            .collect();
        format!(
            "host={} user={USER} dbname={dbname} target_session_attrs=read-write",
            hosts.join(",")
        )
    }

    /// Waits, up to `within`, until this standby has replayed everything
    /// `primary` had written when the call began.
    pub fn catch_up_with(
        &self,
        primary: &Cluster,
        within: std::time::Duration,
    ) -> Result<(), ClusterError> {
        let target = primary.psql_value("postgres", "SELECT pg_current_wal_lsn()")?;
        let target = target.trim();
        let check =
            format!("SELECT coalesce(pg_last_wal_replay_lsn() >= '{target}'::pg_lsn, false)");
        let until = std::time::Instant::now() + within;
        while std::time::Instant::now() < until {
            if self.psql_value("postgres", &check)?.trim() == "t" {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(ClusterError::Command(
            format!("catch up with {target}"),
            format!("the standby had not replayed it within {within:?}"),
        ))
    }

    /// The pid of this standby's WAL receiver, if it runs.
    pub fn wal_receiver_pid(&self) -> Result<Option<u32>, ClusterError> {
        let out = self.psql_value("postgres", "SELECT pid FROM pg_stat_wal_receiver")?;
        Ok(out.trim().parse().ok())
    }
}
