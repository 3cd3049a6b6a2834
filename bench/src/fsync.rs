//! The physical limit of a replicated write: how fast the data disk makes 4 KiB durable.
//!
//! Appends `write_bytes` to a temporary file and calls `sync_data` after each append,
//! like a write-ahead log; every Raft commit needs at least one such sync (on the leader
//! and on a follower), so a put cannot be faster than this. The file is removed afterwards.
//! The loop stops after `iterations` syncs or after `time_limit`, whichever comes first.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Raw result of an fsync probe.
#[derive(Debug, Clone)]
pub struct FsyncMeasurement {
    /// One latency per write + sync.
    pub samples: Vec<Duration>,
    /// Wall time of the whole loop.
    pub elapsed: Duration,
}

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct FsyncProbe {
    pub iterations: usize,
    pub write_bytes: usize,
    pub time_limit: Duration,
}

impl Default for FsyncProbe {
    fn default() -> Self {
        Self {
            iterations: 200,
            write_bytes: 4096,
            time_limit: Duration::from_secs(30),
        }
    }
}

impl FsyncProbe {
    /// Runs the probe in a temporary file under `dir`. Blocking: call it off the async
    /// runtime's worker threads.
    pub fn run(&self, dir: &Path) -> std::io::Result<FsyncMeasurement> {
        let mut file = tempfile::Builder::new()
            .prefix("stratus-bench-fsync-")
            .tempfile_in(dir)?;
        let block = vec![0xa5_u8; self.write_bytes];
        // Capacity bounded: `iterations` may be huge when the time limit is what stops the loop.
        let mut samples = Vec::with_capacity(self.iterations.min(100_000));
        let started = Instant::now();
        while samples.len() < self.iterations && started.elapsed() < self.time_limit {
            let t = Instant::now();
            file.as_file_mut().write_all(&block)?;
            file.as_file().sync_data()?;
            samples.push(t.elapsed());
        }
        Ok(FsyncMeasurement {
            samples,
            elapsed: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_iteration_count_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let probe = FsyncProbe {
            iterations: 5,
            ..FsyncProbe::default()
        };
        let measurement = probe.run(dir.path()).unwrap();
        assert_eq!(measurement.samples.len(), 5);
        assert!(measurement.elapsed >= measurement.samples.iter().sum::<Duration>());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn stops_at_the_time_limit() {
        let dir = tempfile::tempdir().unwrap();
        let probe = FsyncProbe {
            iterations: usize::MAX,
            write_bytes: 16,
            time_limit: Duration::ZERO,
        };
        assert!(probe.run(dir.path()).unwrap().samples.is_empty());
    }

    #[test]
    fn missing_directory_is_an_error_not_a_panic() {
        let probe = FsyncProbe::default();
        assert!(probe.run(Path::new("/nonexistent/stratus-bench")).is_err());
    }
}
