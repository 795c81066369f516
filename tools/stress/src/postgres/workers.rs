//! Starting worker processes and reading their messages. Each worker is
//! this binary, re-executed with its [`Options`] as JSON in the
//! [`WORKER_OPTIONS`] environment variable (slot, seed and remaining
//! duration set by the coordinator); a thread per process reads its stdout
//! and forwards each [`Message`] with its sender and arrival time, and
//! [`Workers::order`] writes an [`Order`] on its stdin.

use super::message::{Arrival, Incarnation, Message, Order};
use crate::options::Options;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The environment variable that makes this binary a worker process: it
/// holds the worker's options as JSON.
pub const WORKER_OPTIONS: &str = "STRESS_WORKER_OPTIONS";

/// The options of a worker process, if this process is one.
pub fn worker_options() -> Option<Result<Options, String>> {
    let json = std::env::var_os(WORKER_OPTIONS)?;
    let json = json.to_string_lossy();
    Some(serde_json::from_str(&json).map_err(|e| format!("{WORKER_OPTIONS}: {e}")))
}

/// A running worker process.
struct WorkerChild {
    child: Child,
    orders: ChildStdin,
}

/// The worker processes of a run, one per slot, and the channel their
/// messages arrive on.
pub struct Workers {
    /// The run's options, as every worker gets them before its own fields
    /// are set.
    options: Options,
    running: Vec<WorkerChild>,
    /// The generation the next fresh process gets.
    next_generation: u64,
    sender: Option<mpsc::Sender<Arrival<Message>>>,
    messages: mpsc::Receiver<Arrival<Message>>,
}

impl Workers {
    /// Starts one worker process per slot (`--processes`), each for
    /// `seconds`, on the database at `url`.
    pub fn start(options: &Options, url: &str, seconds: f64) -> Result<Workers, String> {
        let (sender, messages) = mpsc::channel();
        let mut options = options.clone();
        options.database_url = Some(url.to_string());
        let mut workers = Workers {
            options,
            running: Vec::new(),
            next_generation: 0,
            sender: Some(sender),
            messages,
        };
        for slot in 0..workers.slots() {
            // The first processes of every slot share generation 0.
            let child = workers.spawn(slot, 0, seconds)?;
            workers.running.push(child);
        }
        workers.next_generation = workers.slots() as u64;
        Ok(workers)
    }

    /// How many worker processes run at once.
    pub fn slots(&self) -> usize {
        self.options.processes as usize
    }

    fn spawn(&self, slot: usize, generation: u64, seconds: f64) -> Result<WorkerChild, String> {
        let mut options = self.options.clone();
        options.worker = Some(slot as u64);
        options.seed = options.seed.wrapping_add(generation);
        options.duration = Some(seconds.max(0.001));
        let json = serde_json::to_string(&options).map_err(|e| e.to_string())?;
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        let mut child = Command::new(exe)
            .env(WORKER_OPTIONS, json)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start a worker process: {e}"))?;
        let stdout = child.stdout.take().ok_or("worker without stdout")?;
        let orders = child.stdin.take().ok_or("worker without stdin")?;
        let sender = self.sender.clone().ok_or("the workers were wound down")?;
        let from = Incarnation { slot, generation };
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(message) = Message::parse(&line) else {
                    continue;
                };
                let arrival = Arrival {
                    from,
                    at: Instant::now(),
                    message,
                };
                if sender.send(arrival).is_err() {
                    break;
                }
            }
        });
        Ok(WorkerChild { child, orders })
    }

    /// Writes `order` on the stdin of the process in `slot`.
    pub fn order(&mut self, slot: usize, order: &Order) -> Result<(), String> {
        let orders = &mut self.running[slot].orders;
        writeln!(orders, "{}", order.line())
            .and_then(|()| orders.flush())
            .map_err(|e| format!("an order to worker {slot}: {e}"))
    }

    /// Kills the process in `slot` with -9 and starts a fresh one there,
    /// for `seconds`.
    pub fn replace(&mut self, slot: usize, seconds: f64) -> Result<(), String> {
        let old = &mut self.running[slot].child;
        let _ = old.kill();
        let _ = old.wait();
        let generation = self.next_generation;
        self.running[slot] = self.spawn(slot, generation, seconds)?;
        self.next_generation += 1;
        Ok(())
    }

    /// The messages that arrived so far, without waiting.
    pub fn arrived(&self) -> impl Iterator<Item = Arrival<Message>> + '_ {
        self.messages.try_iter()
    }

    /// Waits until `grace` for every process to end, kills those still
    /// running then, and returns how many had to be killed.
    pub fn wait_until(&mut self, grace: Instant) -> usize {
        let mut stragglers = 0;
        for worker in &mut self.running {
            loop {
                match worker.child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < grace => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        stragglers += 1;
                        let _ = worker.child.kill();
                        let _ = worker.child.wait();
                        break;
                    }
                }
            }
        }
        stragglers
    }

    /// Every message still on its way once the processes have ended: each
    /// reader thread ends at its process's end of file.
    pub fn drain(&mut self) -> Vec<Arrival<Message>> {
        self.sender = None;
        let mut rest = Vec::new();
        while let Ok(arrival) = self.messages.recv_timeout(Duration::from_secs(5)) {
            rest.push(arrival);
        }
        rest
    }
}

/// Sends signal `name` (`STOP`, `CONT`) to process `pid`.
pub fn signal(pid: u32, name: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .map_err(|e| format!("kill -{name} {pid}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{name} {pid} failed"))
    }
}
