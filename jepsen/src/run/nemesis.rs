//! The nemesis: breaks the cluster on a schedule and records every fault in the history.
//!
//! Schedule: quiet for one interval, then one fault for one interval, then healed, and so
//! on until the time limit (each interval jittered by ±25% from the seeded RNG). One fault
//! at a time, drawn from those asked for in shuffled rounds (each once per round):
//! - kill / pause / slow: one node, half of the time the leader of a random data group
//!   (of the workload's own groups when it named them: the queue workloads' queue group,
//!   see `ClusterView::focus_on`).
//! - zone: both nodes of a random zone killed, restarted at the end.
//! - partition: halves, majority/minority, the leader of a random data group isolated, a
//!   whole zone isolated, or a bridge (see [`crate::run::partition`]), also drawn in
//!   shuffled rounds.
//!
//! Every fault is a pair of nemesis operations in the history: `start` (invoked before it
//! is applied, completed once it is) and `stop` (the same for undoing it). A step that
//! fails completes as `info` and is listed in [`Nemesis::errors`]; the run goes on.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::history::{NemesisAction, NemesisEvent, Op, OpResult, Outcome, ProcessId, Recorder};
use crate::run::cluster_view::ClusterView;
use crate::run::partition::{self, Partition, PartitionKind};
use crate::run::target::{FaultKind, NodeId, Target, TargetError, ZONES};

/// The process nemesis events are recorded under.
pub const NEMESIS_PROCESS: ProcessId = ProcessId(u64::MAX);

/// A fault in force, with what undoes it.
#[derive(Debug, Clone)]
enum Active {
    Killed(Vec<NodeId>),
    Paused(NodeId),
    Partitioned(Partition),
    Slowed(NodeId),
}

/// What the run asked the nemesis to do.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub faults: Vec<FaultKind>,
    pub interval: Duration,
    pub seed: u64,
}

pub struct Nemesis<'a> {
    target: &'a mut dyn Target,
    view: &'a ClusterView,
    recorder: Recorder,
    rng: StdRng,
    schedule: Schedule,
    active: Option<(NemesisEvent, Active)>,
    errors: Vec<String>,
    fault_bag: Bag<FaultKind>,
    partition_bag: Bag<PartitionKind>,
}

/// Draws every choice once, in a random order, before any is drawn again: over a run each
/// fault (and each kind of partition) comes up about equally often.
#[derive(Debug)]
struct Bag<T> {
    left: Vec<T>,
}

impl<T: Copy> Bag<T> {
    fn new() -> Self {
        Bag { left: Vec::new() }
    }

    fn draw(&mut self, choices: &[T], rng: &mut impl Rng) -> Option<T> {
        if self.left.is_empty() {
            self.left = choices.to_vec();
            self.left.shuffle(rng);
        }
        self.left.pop()
    }
}

impl<'a> Nemesis<'a> {
    pub fn new(
        target: &'a mut dyn Target,
        view: &'a ClusterView,
        recorder: Recorder,
        schedule: Schedule,
    ) -> Self {
        Nemesis {
            rng: StdRng::seed_from_u64(schedule.seed ^ 0x006e_656d_6573_6973),
            target,
            view,
            recorder,
            schedule,
            active: None,
            errors: Vec::new(),
            fault_bag: Bag::new(),
            partition_bag: Bag::new(),
        }
    }

    /// Steps that failed, in order.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Runs the schedule until `stop`, then undoes the fault in force, if any.
    ///
    /// Target calls block (they run commands); this runs on the runtime's main thread, so
    /// the client tasks on the worker threads are not held up.
    pub async fn run_until(&mut self, stop: Instant) {
        if self.schedule.faults.is_empty() {
            tokio::time::sleep_until(stop).await;
            return;
        }
        loop {
            let quiet = self.jittered();
            if !sleep_until_or(stop, quiet).await {
                break;
            }
            self.start_one().await;
            let hold = self.jittered();
            sleep_until_or(stop, hold).await;
            self.stop_active();
            if Instant::now() >= stop {
                break;
            }
        }
        self.stop_active();
    }

    /// Undoes everything the target knows it did (after [`Nemesis::run_until`], or after
    /// an error), recorded as one `heal-all` fault window.
    pub fn heal_all(&mut self) {
        self.stop_active();
        let event = NemesisEvent {
            action: NemesisAction::Stop,
            fault: "heal-all".into(),
            nodes: self.target.nodes(),
            detail: String::new(),
        };
        let target = &mut *self.target;
        Self::record(&self.recorder, &mut self.errors, event, || {
            target.heal_all()
        });
    }

    fn jittered(&mut self) -> Duration {
        self.schedule
            .interval
            .mul_f64(self.rng.gen_range(0.75..1.25))
    }

    async fn start_one(&mut self) {
        let Some(kind) = self.fault_bag.draw(&self.schedule.faults, &mut self.rng) else {
            return;
        };
        let (event, active) = self.plan(kind).await;
        let target = &mut *self.target;
        Self::record(&self.recorder, &mut self.errors, event.clone(), || {
            apply(target, &active)
        });
        // Even a fault that failed half way is undone at its end.
        self.active = Some((event, active));
    }

    fn stop_active(&mut self) {
        let Some((start, active)) = self.active.take() else {
            return;
        };
        let event = NemesisEvent {
            action: NemesisAction::Stop,
            ..start
        };
        let target = &mut *self.target;
        Self::record(&self.recorder, &mut self.errors, event, || {
            undo(target, &active)
        });
    }

    /// Chooses the victims of a fault of `kind`.
    async fn plan(&mut self, kind: FaultKind) -> (NemesisEvent, Active) {
        let nodes = self.target.nodes();
        let event = |fault: &str, nodes: Vec<NodeId>, detail: String| NemesisEvent {
            action: NemesisAction::Start,
            fault: fault.to_string(),
            nodes,
            detail,
        };
        match kind {
            FaultKind::Kill | FaultKind::Pause | FaultKind::Slow => {
                let (node, detail) = self.pick_node(&nodes).await;
                let active = match kind {
                    FaultKind::Kill => Active::Killed(vec![node]),
                    FaultKind::Pause => Active::Paused(node),
                    _ => Active::Slowed(node),
                };
                (event(kind.name(), vec![node], detail), active)
            }
            FaultKind::Zone => {
                let zone = ZONES[self.rng.gen_range(0..ZONES.len())];
                let victims: Vec<NodeId> = nodes
                    .iter()
                    .copied()
                    .filter(|n| self.target.zone_of(*n) == zone)
                    .collect();
                (
                    event("zone", victims.clone(), format!("zone {zone}")),
                    Active::Killed(victims),
                )
            }
            FaultKind::Partition => {
                let kind = self
                    .partition_bag
                    .draw(&PartitionKind::ALL, &mut self.rng)
                    .unwrap_or(PartitionKind::Halves);
                let split = match kind {
                    PartitionKind::Halves => partition::halves(&nodes, &mut self.rng),
                    PartitionKind::MajorityMinority => {
                        partition::majority_minority(&nodes, &mut self.rng)
                    }
                    PartitionKind::IsolateLeader => {
                        match self.view.random_data_leader(&mut self.rng).await {
                            Some((_, leader)) => partition::isolate(&nodes, leader),
                            None => partition::halves(&nodes, &mut self.rng),
                        }
                    }
                    PartitionKind::IsolateZone => {
                        let zone = ZONES[self.rng.gen_range(0..ZONES.len())];
                        partition::isolate_zone(&nodes, zone)
                    }
                    PartitionKind::Bridge => partition::bridge(&nodes, &mut self.rng),
                };
                (
                    event(split.kind.name(), split.affected(), split.to_string()),
                    Active::Partitioned(split),
                )
            }
        }
    }

    /// Half of the time the leader of a random data group, else any node.
    async fn pick_node(&mut self, nodes: &[NodeId]) -> (NodeId, String) {
        if self.rng.gen_bool(0.5) {
            if let Some((group, leader)) = self.view.random_data_leader(&mut self.rng).await {
                return (leader, format!("leader of group {group}"));
            }
        }
        let node = nodes.choose(&mut self.rng).copied().unwrap_or(1);
        (node, "random node".into())
    }

    /// Records `event` around `step`: invoked before, `ok` or `info` after.
    fn record(
        recorder: &Recorder,
        errors: &mut Vec<String>,
        event: NemesisEvent,
        step: impl FnOnce() -> Result<(), TargetError>,
    ) {
        let shown = format!(
            "{} {} on {:?}",
            match event.action {
                NemesisAction::Start => "start",
                NemesisAction::Stop => "stop",
            },
            event.fault,
            event.nodes
        );
        let id = recorder.invoke(NEMESIS_PROCESS, Op::Nemesis(event));
        let result = step();
        let outcome = match &result {
            Ok(()) => Outcome::Ok(OpResult::Done),
            Err(_) => Outcome::Info,
        };
        // The id was just handed out by this recorder: completing it cannot fail.
        let _ = recorder.complete(id, outcome);
        match result {
            Ok(()) => eprintln!("nemesis: {shown}"),
            Err(e) => {
                eprintln!("nemesis: {shown} failed: {e}");
                errors.push(format!("{shown}: {e}"));
            }
        }
    }
}

fn apply(target: &mut dyn Target, active: &Active) -> Result<(), TargetError> {
    match active {
        Active::Killed(nodes) => nodes.iter().try_for_each(|n| target.kill(*n)),
        Active::Paused(node) => target.pause(*node),
        Active::Partitioned(split) => target.partition(split),
        Active::Slowed(node) => target.slow(*node),
    }
}

fn undo(target: &mut dyn Target, active: &Active) -> Result<(), TargetError> {
    match active {
        Active::Killed(nodes) => {
            // Restart every node even if one fails.
            let results: Vec<_> = nodes.iter().map(|n| target.restart(*n)).collect();
            results.into_iter().collect()
        }
        Active::Paused(node) => target.resume(*node),
        Active::Partitioned(_) => target.heal(),
        Active::Slowed(node) => target.unslow(*node),
    }
}

/// Sleeps for `duration` but not past `stop`; false when `stop` came first.
async fn sleep_until_or(stop: Instant, duration: Duration) -> bool {
    let wake = Instant::now() + duration;
    if wake >= stop {
        tokio::time::sleep_until(stop).await;
        false
    } else {
        tokio::time::sleep_until(wake).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bag_draws_every_choice_once_per_round() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut bag = Bag::new();
        let choices = [1, 2, 3, 4];
        for _ in 0..3 {
            let mut round: Vec<i32> = (0..4)
                .map(|_| bag.draw(&choices, &mut rng).unwrap())
                .collect();
            round.sort_unstable();
            assert_eq!(round, choices);
        }
        let mut empty: Bag<i32> = Bag::new();
        assert_eq!(empty.draw(&[], &mut rng), None);
    }
}
