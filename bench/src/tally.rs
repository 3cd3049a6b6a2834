//! The end of every closed-loop phase: wait for its client tasks and add up what each
//! counted. Each phase's outcome type says how two of its tallies merge and what a client
//! task that failed (panicked, cancelled) counts as.

use tokio::task::JoinSet;

/// What one client task of a phase counted; the phase's total is one more of them.
pub trait ClientTally: Default + Send + 'static {
    /// Add another client's counts to these, keeping the first error sample.
    fn merge(&mut self, other: Self);
    /// Note a client task that ended without its tally.
    fn task_failed(&mut self, error: String);
}

/// Waits for every task and merges its tally into `total`.
pub async fn join_clients<T: ClientTally>(mut tasks: JoinSet<T>, mut total: T) -> T {
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(tally) => total.merge(tally),
            Err(join_error) => total.task_failed(format!("client task failed: {join_error}")),
        }
    }
    total
}
