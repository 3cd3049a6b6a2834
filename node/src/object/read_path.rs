//! Reading an object's bytes back: a byte range of inline data, of an erasure-coded blob,
//! or of a multipart object's parts, as a stream for the client (ARCHITECTURE.md §4).
//!
//! Erasure-coded data is read a stripe at a time. For each stripe the reader takes the
//! data shards' pieces; when one is missing (its node is down, the shard is gone, a block
//! fails its CRC) it brings in other shards, parity first, until it has `data_shards`
//! pieces, and reconstructs. Each shard is read through one streaming request from the
//! range's current stripe to its end, pumped by a small task into a channel of
//! `prefetch` pieces, so the next stripes are on their way while one is decoded; memory
//! per request stays at a few stripes whatever the object size.
//!
//! Failure handling per shard: a corrupt block costs only that block (the shard is opened
//! again from the next stripe); a node that is unreachable, or a shard that is not there,
//! is not asked again during this read. Shards the metadata records as missing are never
//! asked. Parity shards, once brought in, stay in for the rest of the read (a node down
//! usually stays down for all of it).
//!
//! Errors: before the stream is returned its first chunk is read, so a read that cannot
//! start (too few shards) fails as a clean `Unavailable`; a failure later ends the stream
//! with an I/O error (the client sees a short body, as with any server that fails mid-way).
//!
//! Only the requested bytes are emitted: the first and last stripes are trimmed.
//!
//! Not here: reporting bad shards for repair. The object service's shard I/O is a
//! `damage::WatchedShardIo`, which reports every corrupt or absent shard a read meets, so
//! this reader needs no hook of its own.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt};
use tokio::sync::mpsc;

use super::erasure::{Decoder, ErasureLayout, Stripe, StripeRange};
use super::model::{DataRef, ErasureRef};
use super::service::{BodyStream, ServiceError};
use super::shard_io::{ShardIo, ShardIoError};
use crate::cluster::directory::NodeId;
use crate::store::chunks::ShardId;

/// Stripes each shard reader runs ahead of the decoder.
pub const PREFETCH_STRIPES: usize = 2;

/// Stream bytes `range` of data `data` describing `size_bytes` bytes.
pub async fn open_body(
    io: Arc<dyn ShardIo>,
    data: &DataRef,
    size_bytes: u64,
    range: Range<u64>,
    prefetch: usize,
) -> Result<BodyStream, ServiceError> {
    if range.start > range.end || range.end > size_bytes {
        return Err(ServiceError::Internal(format!(
            "range {}..{} of an object of {size_bytes} bytes",
            range.start, range.end
        )));
    }
    let mut source = match data {
        DataRef::Parts(parts) => {
            let mut segments = VecDeque::new();
            let mut offset = 0u64;
            for part in parts {
                let part_range = offset..offset + part.size_bytes;
                offset = part_range.end;
                let start = range.start.max(part_range.start);
                let end = range.end.min(part_range.end);
                if start < end {
                    segments.push_back(Segment {
                        data: part.data.clone(),
                        size_bytes: part.size_bytes,
                        range: start - part_range.start..end - part_range.start,
                    });
                }
            }
            if offset != size_bytes {
                return Err(ServiceError::Internal(format!(
                    "parts of {offset} bytes for an object of {size_bytes} bytes"
                )));
            }
            Source::Parts(PartsReader {
                io,
                prefetch,
                segments,
                current: None,
            })
        }
        single => Source::Single(PartSource::open(io, single, size_bytes, range, prefetch)?),
    };
    match source.next_chunk().await {
        None => Ok(stream::empty().boxed()),
        Some(Err(e)) => Err(e),
        Some(Ok(first)) => Ok(stream::once(async move { Ok(first) })
            .chain(stream::unfold(Some(source), |state| async move {
                let mut source = state?;
                match source.next_chunk().await {
                    None => None,
                    Some(Ok(bytes)) => Some((Ok(bytes), Some(source))),
                    Some(Err(e)) => Some((Err(std::io::Error::other(e)), None)),
                }
            }))
            .boxed()),
    }
}

enum Source {
    Single(PartSource),
    Parts(PartsReader),
}

impl Source {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, ServiceError>> {
        match self {
            Source::Single(part) => part.next_chunk().await,
            Source::Parts(parts) => parts.next_chunk().await,
        }
    }
}

/// The bytes of one blob (an object's, or one part's).
enum PartSource {
    Inline(Option<Bytes>),
    Erasure(Box<StripeReader>),
}

impl PartSource {
    fn open(
        io: Arc<dyn ShardIo>,
        data: &DataRef,
        size_bytes: u64,
        range: Range<u64>,
        prefetch: usize,
    ) -> Result<Self, ServiceError> {
        match data {
            DataRef::Inline(bytes) => {
                if bytes.len() as u64 != size_bytes {
                    return Err(ServiceError::Internal(format!(
                        "inline data of {} bytes for {size_bytes} bytes",
                        bytes.len()
                    )));
                }
                let slice = &bytes[range.start as usize..range.end as usize];
                Ok(PartSource::Inline(
                    (!slice.is_empty()).then(|| Bytes::copy_from_slice(slice)),
                ))
            }
            DataRef::Erasure(e) => Ok(PartSource::Erasure(Box::new(StripeReader::new(
                io, e, size_bytes, range, prefetch,
            )?))),
            DataRef::Parts(_) => Err(ServiceError::Internal(
                "a part cannot itself have parts".into(),
            )),
        }
    }

    async fn next_chunk(&mut self) -> Option<Result<Bytes, ServiceError>> {
        match self {
            PartSource::Inline(bytes) => bytes.take().map(Ok),
            PartSource::Erasure(reader) => reader.next_chunk().await,
        }
    }
}

/// A part's share of the requested range.
struct Segment {
    data: DataRef,
    size_bytes: u64,
    range: Range<u64>,
}

/// The parts a range covers, opened one after the other.
struct PartsReader {
    io: Arc<dyn ShardIo>,
    prefetch: usize,
    segments: VecDeque<Segment>,
    current: Option<PartSource>,
}

impl PartsReader {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, ServiceError>> {
        loop {
            if let Some(current) = &mut self.current {
                match current.next_chunk().await {
                    Some(item) => return Some(item),
                    None => self.current = None,
                }
            }
            let segment = self.segments.pop_front()?;
            match PartSource::open(
                self.io.clone(),
                &segment.data,
                segment.size_bytes,
                segment.range,
                self.prefetch,
            ) {
                Ok(source) => self.current = Some(source),
                Err(e) => {
                    self.segments.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}

/// One shard as the reader sees it.
enum Slot {
    /// Not being read (yet, or again after a corrupt block).
    Idle,
    Open(Cursor),
    /// Not asked again during this read.
    Dead(String),
}

/// An open streaming read of one shard, positioned at block `next`.
struct Cursor {
    rx: mpsc::Receiver<Result<Bytes, ShardIoError>>,
    next: u64,
    pump: tokio::task::JoinHandle<()>,
}

impl Drop for Cursor {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// Reads a byte range of one erasure-coded blob, stripe by stripe.
struct StripeReader {
    io: Arc<dyn ShardIo>,
    blob: u128,
    nodes: Vec<NodeId>,
    size_bytes: u64,
    layout: ErasureLayout,
    decoder: Decoder,
    range: StripeRange,
    next_stripe: u64,
    slots: Vec<Slot>,
    prefetch: usize,
}

impl StripeReader {
    fn new(
        io: Arc<dyn ShardIo>,
        blob: &ErasureRef,
        size_bytes: u64,
        range: Range<u64>,
        prefetch: usize,
    ) -> Result<Self, ServiceError> {
        let bad =
            |e: String| ServiceError::Internal(format!("blob {:032x} metadata: {e}", blob.blob));
        blob.validate().map_err(|e| bad(e.to_string()))?;
        let layout = ErasureLayout::from(blob.layout);
        let decoder = Decoder::new(layout).map_err(|e| bad(e.to_string()))?;
        let range = layout
            .range(size_bytes, range.start, range.end)
            .map_err(|e| bad(e.to_string()))?;
        let slots = (0..usize::from(layout.total_shards()))
            .map(|i| {
                if blob.missing.contains(&(i as u8)) {
                    Slot::Dead("recorded missing".into())
                } else {
                    Slot::Idle
                }
            })
            .collect();
        Ok(StripeReader {
            io,
            blob: blob.blob,
            nodes: blob.shard_nodes.clone(),
            size_bytes,
            layout,
            decoder,
            next_stripe: range.stripes.start,
            range,
            slots,
            prefetch: prefetch.max(1),
        })
    }

    async fn next_chunk(&mut self) -> Option<Result<Bytes, ServiceError>> {
        if self.next_stripe >= self.range.stripes.end {
            return None;
        }
        let index = self.next_stripe;
        self.next_stripe += 1;
        let result = self.read_stripe(index).await;
        if result.is_err() {
            // A stripe that cannot be read ends the read.
            self.next_stripe = self.range.stripes.end;
            self.slots.iter_mut().for_each(|s| *s = Slot::Idle);
        }
        Some(result)
    }

    async fn read_stripe(&mut self, index: u64) -> Result<Bytes, ServiceError> {
        let stripe = self
            .layout
            .stripe(self.size_bytes, index)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let total = self.slots.len();
        let k = usize::from(self.layout.data_shards);
        let mut pieces: Vec<Option<Bytes>> = vec![None; total];
        let mut tried = vec![false; total];
        // Data shards, and whatever is already streaming (parity brought in earlier).
        let mut round: Vec<usize> = (0..total)
            .filter(|&i| match &self.slots[i] {
                Slot::Dead(_) => false,
                Slot::Open(_) => true,
                Slot::Idle => i < k,
            })
            .collect();
        loop {
            self.fetch(&stripe, &round, &mut pieces).await;
            for &i in &round {
                tried[i] = true;
            }
            let present = pieces.iter().filter(|p| p.is_some()).count();
            if present >= k {
                break;
            }
            round = (0..total)
                .filter(|&i| !tried[i] && !matches!(self.slots[i], Slot::Dead(_)))
                .take(k - present)
                .collect();
            if round.is_empty() {
                return Err(self.unreadable(index, present));
            }
        }
        let within = self.range.within(index);
        if pieces[..k].iter().all(Option::is_some) {
            return Ok(slice_data_pieces(&pieces[..k], stripe.piece_bytes, within));
        }
        let data = self
            .decoder
            .decode(&stripe, &pieces)
            .map_err(|e| ServiceError::Internal(format!("blob {:032x}: {e}", self.blob)))?;
        Ok(data.slice(within))
    }

    fn unreadable(&self, index: u64, present: usize) -> ServiceError {
        let reasons: Vec<String> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Dead(why) => Some(format!("shard {i} on node {}: {why}", self.nodes[i])),
                _ => None,
            })
            .collect();
        ServiceError::Unavailable(format!(
            "stripe {index} of blob {:032x}: {present} of the {} shards needed are readable ({})",
            self.blob,
            self.layout.data_shards,
            reasons.join("; ")
        ))
    }

    /// Take stripe `stripe`'s piece from each shard in `round`, opening reads as needed.
    async fn fetch(&mut self, stripe: &Stripe, round: &[usize], pieces: &mut [Option<Bytes>]) {
        for &i in round {
            let reopen = match &self.slots[i] {
                Slot::Open(cursor) => cursor.next != stripe.index,
                Slot::Idle => true,
                Slot::Dead(_) => false,
            };
            if reopen {
                self.slots[i] = Slot::Open(self.open_cursor(i, stripe.index));
            }
        }
        let receives = self
            .slots
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| round.contains(i))
            .map(|(i, slot)| async move {
                match slot {
                    Slot::Open(cursor) => (i, Some(cursor.rx.recv().await)),
                    _ => (i, None),
                }
            });
        let received = futures::future::join_all(receives).await;
        let expected = stripe.piece_bytes as usize;
        for (i, item) in received {
            let node = self.nodes[i];
            match item {
                None => {}
                Some(Some(Ok(piece))) if piece.len() == expected => {
                    pieces[i] = Some(piece);
                    if let Slot::Open(cursor) = &mut self.slots[i] {
                        cursor.next += 1;
                    }
                }
                Some(Some(Ok(piece))) => {
                    tracing::warn!(
                        blob = %format!("{:032x}", self.blob),
                        shard = i,
                        node,
                        "block {} is {} bytes, expected {expected}; reading around it",
                        stripe.index,
                        piece.len()
                    );
                    self.slots[i] = Slot::Idle;
                }
                Some(Some(Err(e @ ShardIoError::Corrupt { .. }))) => {
                    tracing::warn!(
                        blob = %format!("{:032x}", self.blob),
                        shard = i,
                        node,
                        "block {} is corrupt, reading around it: {e}",
                        stripe.index
                    );
                    self.slots[i] = Slot::Idle;
                }
                Some(Some(Err(e))) => {
                    tracing::debug!(
                        blob = %format!("{:032x}", self.blob),
                        shard = i,
                        node,
                        "shard unreadable, reading around it: {e}"
                    );
                    self.slots[i] = Slot::Dead(e.to_string());
                }
                Some(None) => {
                    self.slots[i] = Slot::Dead("the shard's stream ended early".into());
                }
            }
        }
    }

    /// Stream shard `i` from block `first` to the end of the range through a pump task.
    fn open_cursor(&self, i: usize, first: u64) -> Cursor {
        let (tx, rx) = mpsc::channel(self.prefetch);
        let io = self.io.clone();
        let node = self.nodes[i];
        let id = ShardId::new(self.blob, i as u8);
        let count = self.range.stripes.end - first;
        let pump = tokio::spawn(async move {
            let mut blocks = match io.read_blocks(node, id, first, Some(count)).await {
                Ok(blocks) => blocks,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            while let Some(item) = blocks.next().await {
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        Cursor {
            rx,
            next: first,
            pump,
        }
    }
}

/// Bytes `within` of a stripe from its data pieces (each `piece_bytes` long, the stripe's
/// data back to back): a slice of one piece when the range fits in it, else one copy of
/// just the wanted bytes.
fn slice_data_pieces(data: &[Option<Bytes>], piece_bytes: u32, within: Range<usize>) -> Bytes {
    let piece = piece_bytes as usize;
    if within.is_empty() || piece == 0 {
        return Bytes::new();
    }
    let first = within.start / piece;
    let last = (within.end - 1) / piece;
    let part = |i: usize, lo: usize, hi: usize| -> &[u8] {
        match &data[i] {
            Some(p) => &p[lo.min(p.len())..hi.min(p.len())],
            None => &[],
        }
    };
    if first == last {
        if let Some(p) = &data[first] {
            return p.slice(within.start - first * piece..within.end - first * piece);
        }
    }
    let mut out = BytesMut::with_capacity(within.len());
    for i in first..=last {
        let lo = within.start.max(i * piece) - i * piece;
        let hi = within.end.min((i + 1) * piece) - i * piece;
        out.extend_from_slice(part(i, lo, hi));
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::model::{ETag, PartRef};
    use crate::object::write_path::tests::{body, object, plan, shard_count, six_nodes};
    use crate::object::write_path::{write_body, BodyChecks, WriteTuning};

    async fn write(
        io: &Arc<crate::object::shard_io::LocalShardIo>,
        layout: ErasureLayout,
        blob: u128,
        data: &[u8],
    ) -> DataRef {
        write_body(
            &**io,
            &plan(layout, blob),
            None,
            body(data),
            &BodyChecks::length(Some(data.len() as u64)),
            &WriteTuning::default(),
        )
        .await
        .unwrap()
        .data
    }

    async fn read(
        io: Arc<dyn ShardIo>,
        data: &DataRef,
        size: u64,
        range: Range<u64>,
    ) -> Result<Vec<u8>, ServiceError> {
        let mut stream = open_body(io, data, size, range, PREFETCH_STRIPES).await?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(|e| ServiceError::Internal(e.to_string()))?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn round_trips_at_stripe_boundaries_with_two_nodes_down() {
        let (io, _stores) = six_nodes();
        let layout = ErasureLayout::STANDARD;
        let s = layout.stripe_bytes as usize;
        for (blob, len) in [0, 1, s - 1, s, s + 1, 3 * s + 7].into_iter().enumerate() {
            let data = object(len);
            let stored = write(&io, layout, blob as u128 + 100, &data).await;
            let size = len as u64;
            assert_eq!(
                read(io.clone(), &stored, size, 0..size).await.unwrap(),
                data,
                "{len}"
            );
            // Nodes 1 and 4 (shards 0 and 3: two data shards) down for the read.
            io.set_down(1, true);
            io.set_down(4, true);
            assert_eq!(
                read(io.clone(), &stored, size, 0..size).await.unwrap(),
                data,
                "{len} degraded"
            );
            // A range across the first stripe boundary, degraded.
            if len > s {
                let r = (s as u64 - 5)..(s as u64 + 5).min(size);
                assert_eq!(
                    read(io.clone(), &stored, size, r.clone()).await.unwrap(),
                    &data[r.start as usize..r.end as usize]
                );
            }
            // A third node down: the read cannot start, and says so.
            io.set_down(6, true);
            if len > 0 {
                match read(io.clone(), &stored, size, 0..size).await {
                    Err(ServiceError::Unavailable(m)) => assert!(m.contains("3 of the 4"), "{m}"),
                    other => panic!("{len}: {other:?}"),
                }
            }
            for node in [1, 4, 6] {
                io.set_down(node, false);
            }
        }
    }

    #[tokio::test]
    async fn a_corrupt_block_is_read_around() {
        let (io, stores) = six_nodes();
        let layout = ErasureLayout::new(4, 2, 4096).unwrap();
        let data = object(5 * 4096 + 100);
        let blob = 77;
        let stored = write(&io, layout, blob, &data).await;
        let size = data.len() as u64;
        // Shard 1 (node 2) has a bad block 1, shard 2 (node 3) a truncated block 3.
        assert!(stores[1].corrupt_block(ShardId::new(blob, 1), 1));
        assert!(stores[2].drop_block(ShardId::new(blob, 2), 3));
        assert_eq!(
            read(io.clone(), &stored, size, 0..size).await.unwrap(),
            data
        );
        // Every range, including ones that start on the bad blocks.
        for (start, end) in [(4096, 4097), (4000, 3 * 4096 + 10), (3 * 4096, size)] {
            assert_eq!(
                read(io.clone(), &stored, size, start..end).await.unwrap(),
                &data[start as usize..end as usize]
            );
        }
        // Plus a node down: stripe 1 still has exactly four good pieces.
        io.set_down(5, true);
        assert_eq!(
            read(io.clone(), &stored, size, 0..size).await.unwrap(),
            data
        );
        // And shards recorded missing are not asked at all.
        let mut recorded = stored.clone();
        if let DataRef::Erasure(e) = &mut recorded {
            e.missing = vec![5];
        }
        io.set_down(5, false);
        io.set_down(6, true);
        assert_eq!(
            read(io.clone(), &recorded, size, 0..size).await.unwrap(),
            data
        );
        assert_eq!(shard_count(&stores), 6);
    }

    #[tokio::test]
    async fn a_write_with_a_node_down_reads_back() {
        let (io, _stores) = six_nodes();
        let layout = ErasureLayout::new(4, 2, 4096).unwrap();
        let data = object(3 * 4096 + 7);
        io.set_down(2, true);
        let stored = write(&io, layout, 5, &data).await;
        io.set_down(2, false);
        let size = data.len() as u64;
        assert_eq!(
            read(io.clone(), &stored, size, 0..size).await.unwrap(),
            data
        );
        // One more node down still leaves k shards.
        io.set_down(1, true);
        assert_eq!(
            read(io.clone(), &stored, size, 0..size).await.unwrap(),
            data
        );
    }

    #[tokio::test]
    async fn ranges_span_parts_of_every_kind() {
        let (io, _stores) = six_nodes();
        let layout = ErasureLayout::new(4, 2, 4096).unwrap();
        let first = object(2 * 4096 + 10);
        let second: Vec<u8> = object(300).into_iter().map(|b| b ^ 0x5a).collect();
        let third: Vec<u8> = object(4096 * 3)
            .into_iter()
            .map(|b| b.wrapping_add(7))
            .collect();
        let tag = ETag::parse("aa").unwrap();
        let parts = DataRef::Parts(vec![
            PartRef {
                part_number: 1,
                size_bytes: first.len() as u64,
                etag: tag.clone(),
                data: write(&io, layout, 1, &first).await,
            },
            PartRef {
                part_number: 2,
                size_bytes: second.len() as u64,
                etag: tag.clone(),
                data: DataRef::Inline(second.clone()),
            },
            PartRef {
                part_number: 5,
                size_bytes: third.len() as u64,
                etag: tag,
                data: write(&io, layout, 3, &third).await,
            },
        ]);
        let all: Vec<u8> = [first.clone(), second.clone(), third.clone()].concat();
        let size = all.len() as u64;
        parts.validate(size).unwrap();
        let a = first.len() as u64;
        let b = a + second.len() as u64;
        for (start, end) in [
            (0, size),
            (0, 1),
            (a - 1, a + 1),
            (a, b),
            (a + 5, b + 5000),
            (b - 1, size),
            (4095, 4097),
            (size - 1, size),
            (10, 10),
        ] {
            assert_eq!(
                read(io.clone(), &parts, size, start..end).await.unwrap(),
                &all[start as usize..end as usize],
                "{start}..{end}"
            );
        }
        io.set_down(3, true);
        io.set_down(6, true);
        assert_eq!(read(io.clone(), &parts, size, 0..size).await.unwrap(), all);
        assert!(read(io.clone(), &parts, size, 0..size + 1).await.is_err());
    }

    #[tokio::test]
    async fn inline_data_and_empty_ranges() {
        let (io, _stores) = six_nodes();
        let data = DataRef::Inline(b"hello world".to_vec());
        assert_eq!(read(io.clone(), &data, 11, 6..11).await.unwrap(), b"world");
        assert_eq!(read(io.clone(), &data, 11, 3..3).await.unwrap(), b"");
        assert!(read(io.clone(), &data, 12, 0..12).await.is_err());
    }

    #[test]
    fn data_pieces_slice_without_decoding() {
        let pieces: Vec<Option<Bytes>> = (0..4u8).map(|i| Some(Bytes::from(vec![i; 4]))).collect();
        assert_eq!(&slice_data_pieces(&pieces, 4, 1..3)[..], &[0, 0]);
        assert_eq!(
            &slice_data_pieces(&pieces, 4, 3..9)[..],
            &[0, 1, 1, 1, 1, 2]
        );
        assert_eq!(
            &slice_data_pieces(&pieces, 4, 0..16)[..],
            &[0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
        );
        assert!(slice_data_pieces(&pieces, 4, 5..5).is_empty());
    }
}
