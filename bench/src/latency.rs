//! Latency samples and their summary. Samples are kept whole and sorted (nearest-rank
//! percentiles, exact), which is affordable for the bounded runs the scenarios make.

use std::time::Duration;

/// Percentiles and extremes of a set of latency samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarizes `samples` (in any order); `None` when there are none.
    pub fn from_samples(mut samples: Vec<Duration>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        Some(Self {
            count: samples.len(),
            mean_ms: millis(total) / samples.len() as f64,
            p50_ms: millis(percentile(&samples, 0.50)),
            p99_ms: millis(percentile(&samples, 0.99)),
            p999_ms: millis(percentile(&samples, 0.999)),
            max_ms: millis(samples[samples.len() - 1]),
        })
    }
}

/// The nearest-rank `quantile` (0..=1) of ascending `sorted` samples: the smallest sample
/// with at least that fraction of samples at or below it. Zero for no samples.
pub fn percentile(sorted: &[Duration], quantile: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (quantile.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in milliseconds, with sub-millisecond precision.
pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted = ms(&(1..=1000).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 0.50), Duration::from_millis(500));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(990));
        assert_eq!(percentile(&sorted, 0.999), Duration::from_millis(999));
        assert_eq!(percentile(&sorted, 1.0), Duration::from_millis(1000));
        assert_eq!(percentile(&sorted, 0.0), Duration::from_millis(1));
    }

    #[test]
    fn small_sets_use_the_top_sample_for_high_percentiles() {
        let sorted = ms(&[1, 2, 3]);
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(2));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(3));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn summary_sorts_its_samples() {
        let summary = LatencySummary::from_samples(ms(&[9, 1, 5, 3, 7])).unwrap();
        assert_eq!(summary.count, 5);
        assert_eq!(summary.p50_ms, 5.0);
        assert_eq!(summary.p99_ms, 9.0);
        assert_eq!(summary.max_ms, 9.0);
        assert_eq!(summary.mean_ms, 5.0);
        assert_eq!(LatencySummary::from_samples(Vec::new()), None);
    }

    #[test]
    fn millis_keeps_fractions() {
        assert_eq!(millis(Duration::from_micros(1500)), 1.5);
    }
}
