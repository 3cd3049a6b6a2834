//! Physical limits of the object data path, measured on the machine that runs the
//! benchmark, so that S3 throughput can be read as a fraction of them:
//!
//! - `memcpy`: one core copying a buffer larger than the caches (every byte a node moves
//!   is copied at least a few times: socket, stripe buffer, shard file).
//! - `loopback`: one TCP connection on 127.0.0.1 between a tokio writer and a tokio
//!   reader that discards; the edge, the client and the shard RPCs all ride on loopback.
//! - `erasure encode` / `erasure decode`: reed-solomon-erasure on one core at the node's
//!   stripe geometry (default 4+2 with 1 MiB stripes, so 256 KiB pieces), encoding the
//!   parity of whole stripes, and reconstructing the data of a stripe whose first
//!   `parity` data pieces are missing (the worst degraded read).
//!
//! - `disk_write` (when asked): sequential 1 MiB writes to a new file in the data
//!   directory, then one fsync, as a shard file is written; every PUT writes
//!   `(data + parity) / data` times its bytes this way.
//!
//! Rates are in bytes of object data per second. Each probe runs for a time budget, after
//! a short warm-up, and is blocking or self-contained: run the CPU ones off the async
//! runtime's workers (`spawn_blocking`).

use std::time::{Duration, Instant};

use reed_solomon_erasure::galois_8::ReedSolomon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What one probe measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// Bytes processed (object bytes for the codec, bytes copied or received otherwise).
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Throughput {
    /// 10^9 bytes per second; 0 for an empty interval.
    pub fn gb_per_s(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.bytes as f64 / seconds / 1e9
        } else {
            0.0
        }
    }
}

/// The stripe geometry the codec probes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErasureGeometry {
    pub data_shards: usize,
    pub parity_shards: usize,
    /// Object bytes per stripe; a multiple of `data_shards`.
    pub stripe_bytes: usize,
}

impl ErasureGeometry {
    /// The node's STANDARD storage class: 4+2, 1 MiB stripes (256 KiB pieces).
    pub const STANDARD: ErasureGeometry = ErasureGeometry {
        data_shards: 4,
        parity_shards: 2,
        stripe_bytes: 1024 * 1024,
    };

    pub fn piece_bytes(&self) -> usize {
        self.stripe_bytes / self.data_shards.max(1)
    }

    fn total_shards(&self) -> usize {
        self.data_shards + self.parity_shards
    }

    fn codec(&self) -> Result<ReedSolomon, LimitError> {
        if self.data_shards == 0
            || self.parity_shards == 0
            || !self.stripe_bytes.is_multiple_of(self.data_shards)
            || self.stripe_bytes == 0
        {
            return Err(LimitError::Geometry(format!(
                "{}+{} with {}-byte stripes",
                self.data_shards, self.parity_shards, self.stripe_bytes
            )));
        }
        ReedSolomon::new(self.data_shards, self.parity_shards)
            .map_err(|e| LimitError::Geometry(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("invalid erasure geometry: {0}")]
    Geometry(String),
    #[error("reed-solomon: {0}")]
    Codec(String),
    #[error("loopback: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs `step` (which returns the bytes it processed) until `budget` has passed, after
/// one untimed warm-up call.
fn run_for(
    budget: Duration,
    mut step: impl FnMut() -> Result<u64, LimitError>,
) -> Result<Throughput, LimitError> {
    step()?;
    let started = Instant::now();
    let mut bytes = 0u64;
    loop {
        bytes += step()?;
        let elapsed = started.elapsed();
        if elapsed >= budget {
            return Ok(Throughput { bytes, elapsed });
        }
    }
}

/// Encodes the parity of stripes of `geometry` over and over for `budget` (one core).
pub fn erasure_encode(
    geometry: ErasureGeometry,
    budget: Duration,
) -> Result<Throughput, LimitError> {
    let codec = geometry.codec()?;
    let piece = geometry.piece_bytes();
    let mut stripe = pseudo_random(piece * geometry.total_shards(), 1);
    run_for(budget, || {
        let mut pieces: Vec<&mut [u8]> = stripe.chunks_exact_mut(piece).collect();
        codec
            .encode(&mut pieces)
            .map_err(|e| LimitError::Codec(format!("{e:?}")))?;
        Ok(geometry.stripe_bytes as u64)
    })
}

/// Rebuilds the first `parity_shards` data pieces of a coded stripe from the others, over
/// and over for `budget` (one core). The rebuilt pieces are checked once.
pub fn erasure_decode(
    geometry: ErasureGeometry,
    budget: Duration,
) -> Result<Throughput, LimitError> {
    let codec = geometry.codec()?;
    let piece = geometry.piece_bytes();
    let mut coded = pseudo_random(piece * geometry.total_shards(), 2);
    {
        let mut pieces: Vec<&mut [u8]> = coded.chunks_exact_mut(piece).collect();
        codec
            .encode(&mut pieces)
            .map_err(|e| LimitError::Codec(format!("{e:?}")))?;
    }
    let original = coded.clone();
    let lost = geometry.parity_shards.min(geometry.data_shards);
    let mut work = coded.clone();
    let reconstruct = |work: &mut Vec<u8>| -> Result<(), LimitError> {
        let mut slots: Vec<(&mut [u8], bool)> = work
            .chunks_exact_mut(piece)
            .enumerate()
            .map(|(i, p)| (p, i >= lost))
            .collect();
        codec
            .reconstruct_data(&mut slots)
            .map_err(|e| LimitError::Codec(format!("{e:?}")))
    };
    reconstruct(&mut work)?;
    if work[..geometry.stripe_bytes] != original[..geometry.stripe_bytes] {
        return Err(LimitError::Codec(
            "reconstruction gave different data".into(),
        ));
    }
    run_for(budget, || {
        reconstruct(&mut coded)?;
        Ok(geometry.stripe_bytes as u64)
    })
}

/// Copies a `buffer_bytes` buffer into another over and over for `budget` (one core).
/// Choose a buffer well above the last-level cache (64 MiB) to measure memory.
pub fn memcpy(buffer_bytes: usize, budget: Duration) -> Result<Throughput, LimitError> {
    let source = pseudo_random(buffer_bytes.max(1), 3);
    let mut target = vec![0u8; source.len()];
    let result = run_for(budget, || {
        target.copy_from_slice(&source);
        std::hint::black_box(&mut target);
        Ok(source.len() as u64)
    })?;
    Ok(result)
}

/// Streams `chunk_bytes` writes over one TCP connection on 127.0.0.1 for `budget`, from a
/// tokio task to a tokio task that reads and discards; counts the bytes received.
pub async fn loopback_tcp(chunk_bytes: usize, budget: Duration) -> Result<Throughput, LimitError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        let mut buf = vec![0u8; 1024 * 1024];
        let mut received = 0u64;
        let mut started = None;
        loop {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            // The clock starts at the first read, whose bytes are not counted, so
            // connection setup is not part of the rate.
            if started.is_none() {
                started = Some(Instant::now());
            } else {
                received += n as u64;
            }
        }
        let elapsed = started.map(|s| s.elapsed()).unwrap_or_default();
        Ok::<_, std::io::Error>((received, elapsed))
    });
    let mut socket = TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    let chunk = pseudo_random(chunk_bytes.max(1), 4);
    let started = Instant::now();
    while started.elapsed() < budget {
        socket.write_all(&chunk).await?;
    }
    socket.shutdown().await?;
    drop(socket);
    let (bytes, elapsed) = reader
        .await
        .map_err(|e| std::io::Error::other(format!("loopback reader: {e}")))??;
    Ok(Throughput { bytes, elapsed })
}

/// Writes `total_bytes` in `chunk_bytes` writes to a new temporary file under `dir`, then
/// fsyncs it; the time includes the fsync. The file is removed afterwards. Blocking.
pub fn disk_write(
    dir: &std::path::Path,
    total_bytes: u64,
    chunk_bytes: usize,
) -> Result<Throughput, LimitError> {
    use std::io::Write;
    let chunk = pseudo_random(chunk_bytes.max(1), 5);
    let mut file = tempfile::Builder::new()
        .prefix("stratus-bench-disk-")
        .tempfile_in(dir)?;
    let started = Instant::now();
    let mut written = 0u64;
    while written < total_bytes {
        let take = (total_bytes - written).min(chunk.len() as u64) as usize;
        file.as_file_mut().write_all(&chunk[..take])?;
        written += take as u64;
    }
    file.as_file().sync_all()?;
    Ok(Throughput {
        bytes: written,
        elapsed: started.elapsed(),
    })
}

/// Incompressible-looking bytes (xorshift), so no layer can shortcut them.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = x.to_le_bytes();
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&word[..take]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(20);

    #[test]
    fn codec_probes_run_and_decode_checks_itself() {
        let small = ErasureGeometry {
            data_shards: 4,
            parity_shards: 2,
            stripe_bytes: 64 * 1024,
        };
        assert_eq!(small.piece_bytes(), 16 * 1024);
        let enc = erasure_encode(small, SHORT).unwrap();
        assert!(enc.bytes >= 64 * 1024 && enc.bytes.is_multiple_of(64 * 1024));
        assert!(enc.gb_per_s() > 0.0);
        let dec = erasure_decode(small, SHORT).unwrap();
        assert!(dec.bytes >= 64 * 1024);
        assert!(dec.elapsed >= SHORT);
    }

    #[test]
    fn bad_geometry_is_an_error() {
        for bad in [(0, 2, 1024), (4, 0, 1024), (4, 2, 1023), (4, 2, 0)] {
            let geometry = ErasureGeometry {
                data_shards: bad.0,
                parity_shards: bad.1,
                stripe_bytes: bad.2,
            };
            assert!(erasure_encode(geometry, SHORT).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn memcpy_counts_copied_bytes() {
        let result = memcpy(4096, SHORT).unwrap();
        assert!(result.bytes.is_multiple_of(4096));
        assert!(result.bytes > 0);
    }

    #[tokio::test]
    async fn loopback_moves_bytes() {
        let result = loopback_tcp(64 * 1024, Duration::from_millis(50))
            .await
            .unwrap();
        assert!(result.bytes > 0);
        assert!(result.gb_per_s() > 0.0);
    }

    #[test]
    fn disk_write_writes_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let result = disk_write(dir.path(), 3 * 4096 + 5, 4096).unwrap();
        assert_eq!(result.bytes, 3 * 4096 + 5);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(disk_write(std::path::Path::new("/nonexistent/x"), 10, 10).is_err());
    }

    #[test]
    fn pseudo_random_is_deterministic_and_exact() {
        assert_eq!(pseudo_random(13, 7), pseudo_random(13, 7));
        assert_ne!(pseudo_random(13, 7), pseudo_random(13, 8));
        assert_eq!(pseudo_random(13, 7).len(), 13);
        assert!(pseudo_random(0, 1).is_empty());
    }

    #[test]
    fn zero_elapsed_is_zero_rate() {
        let t = Throughput {
            bytes: 10,
            elapsed: Duration::ZERO,
        };
        assert_eq!(t.gb_per_s(), 0.0);
    }
}
