//! The concurrent runs' schedules: what every launcher, revoker and observer
//! of each id does, the proptest strategies that draw them, and their table
//! for reports.

use crate::protocol::End;
use proptest::prelude::*;
use std::time::Duration;

/// Tasks that may also panic or be cancelled part-way.
pub const ABRUPT: Endings = Endings {
    abrupt: true,
    succeed: true,
};
/// Tasks that only return `Ok` or `Err`.
pub const GRACEFUL: Endings = Endings {
    abrupt: false,
    succeed: true,
};
/// Tasks that only return `Err`: with no success to count, a defect can
/// show only in the histories and the final states.
pub const FAILING: Endings = Endings {
    abrupt: false,
    succeed: false,
};

/// A pause between or inside operations.
#[derive(Clone, Copy, Debug)]
pub enum Pause {
    None,
    /// Yields to the scheduler this many times.
    Yield(u8),
    /// Sleeps this many milliseconds.
    Sleep(u8),
}

impl Pause {
    pub(super) async fn run(self) {
        match self {
            Pause::None => {}
            Pause::Yield(times) => {
                for _ in 0..times {
                    tokio::task::yield_now().await;
                }
            }
            Pause::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms.into())).await,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    /// Before the call.
    pub(super) pause: Pause,
    /// `launch` when true, `launch_block` otherwise.
    pub(super) spawned: bool,
    /// Inside the task, before it ends.
    pub(super) work: Pause,
    pub(super) end: End,
}

#[derive(Clone, Copy, Debug)]
pub struct Revoke {
    /// Before the call.
    pub(super) pause: Pause,
    /// Inside the revoke future, before it ends.
    pub(super) work: Pause,
    /// Whether the revoke future returns `Ok`.
    pub(super) ok: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum Read {
    Query,
    QuickQuery,
    Wait,
}

#[derive(Clone, Debug)]
pub struct Actors {
    /// One sequence of attempts per launcher.
    pub(super) launchers: Vec<Vec<Attempt>>,
    /// One sequence of revokes per revoker.
    pub(super) revokers: Vec<Vec<Revoke>>,
    /// One sequence of (pause before, read) per observer.
    pub(super) observers: Vec<Vec<(Pause, Read)>>,
}

/// What each id of a run does; id `i` is `schedule[i]`.
pub type Schedule = Vec<Actors>;

/// Which endings the tasks may have.
#[derive(Clone, Copy, Debug)]
pub struct Endings {
    abrupt: bool,
    succeed: bool,
}

fn pause() -> impl Strategy<Value = Pause> {
    prop_oneof![
        2 => Just(Pause::None),
        3 => (1u8..4).prop_map(Pause::Yield),
        2 => (1u8..3).prop_map(Pause::Sleep),
    ]
}

fn attempt(endings: Endings) -> impl Strategy<Value = Attempt> {
    let end = if endings.abrupt {
        prop_oneof![
            3 => Just(End::Ok),
            3 => Just(End::Err),
            1 => Just(End::Panic),
            1 => Just(End::Cancel),
        ]
        .boxed()
    } else if endings.succeed {
        prop_oneof![Just(End::Ok), Just(End::Err)].boxed()
    } else {
        Just(End::Err).boxed()
    };
    (pause(), any::<bool>(), pause(), end).prop_map(|(pause, spawned, work, end)| Attempt {
        pause,
        // A spawned task cannot be cancelled by its caller.
        spawned: spawned && end != End::Cancel,
        work,
        end,
    })
}

fn revoke() -> impl Strategy<Value = Revoke> {
    (pause(), pause(), prop::bool::weighted(0.7)).prop_map(|(pause, work, ok)| Revoke {
        pause,
        work,
        ok,
    })
}

fn read() -> impl Strategy<Value = (Pause, Read)> {
    let kind = prop_oneof![
        2 => Just(Read::Query),
        1 => Just(Read::QuickQuery),
        2 => Just(Read::Wait),
    ];
    (pause(), kind)
}

pub fn schedule(endings: Endings) -> impl Strategy<Value = Schedule> {
    use proptest::collection::vec;
    let actors = (
        vec(vec(attempt(endings), 1..4), 1..4),
        vec(vec(revoke(), 1..3), 0..3),
        vec(vec(read(), 1..5), 0..3),
    )
        .prop_map(|(launchers, revokers, observers)| Actors {
            launchers,
            revokers,
            observers,
        });
    vec(actors, 1..4)
}

/// Schedules that crowd waits around each id's last finish: one launcher
/// with quick attempts, and observers that call `wait` back to back. A wait
/// that reads `Working` just before the last finish and registers just after
/// it is lost for good; any later finish would still wake it.
pub fn wait_storm() -> impl Strategy<Value = Schedule> {
    use proptest::collection::vec;
    let quick = prop_oneof![Just(Pause::None), Just(Pause::Yield(1))];
    let attempt = (quick.clone(), quick, any::<bool>()).prop_map(|(pause, work, ok)| Attempt {
        pause,
        spawned: false,
        work,
        end: if ok { End::Ok } else { End::Err },
    });
    let waits = vec(Just((Pause::None, Read::Wait)), 20..40);
    (vec(attempt, 1..4), vec(waits, 2..4)).prop_map(|(attempts, observers)| {
        vec![Actors {
            launchers: vec![attempts],
            revokers: Vec::new(),
            observers,
        }]
    })
}

/// The schedule as a table: one row per actor, its steps in order.
pub fn table(schedule: &Schedule) -> String {
    let pause = |p: Pause| match p {
        Pause::None => String::new(),
        Pause::Yield(n) => format!("yield {n}; "),
        Pause::Sleep(ms) => format!("sleep {ms}ms; "),
    };
    let mut rows = String::from("| id | actor | steps |\n|----|-------|-------|\n");
    for (id, actors) in schedule.iter().enumerate() {
        for attempts in &actors.launchers {
            let steps: Vec<String> = attempts
                .iter()
                .map(|a| {
                    let call = if a.spawned { "launch" } else { "launch_block" };
                    format!(
                        "{}{call}(task: {}{:?})",
                        pause(a.pause),
                        pause(a.work),
                        a.end
                    )
                })
                .collect();
            rows += &format!("| {id} | launcher | {} |\n", steps.join(", "));
        }
        for revokes in &actors.revokers {
            let steps: Vec<String> = revokes
                .iter()
                .map(|r| {
                    let end = if r.ok { "Ok" } else { "Err" };
                    format!(
                        "{}revoke_block(revoke: {}{end})",
                        pause(r.pause),
                        pause(r.work)
                    )
                })
                .collect();
            rows += &format!("| {id} | revoker | {} |\n", steps.join(", "));
        }
        for reads in &actors.observers {
            let steps: Vec<String> = reads
                .iter()
                .map(|&(p, read)| format!("{}{read:?}", pause(p)))
                .collect();
            rows += &format!("| {id} | observer | {} |\n", steps.join(", "));
        }
    }
    rows
}
