//! Reed–Solomon striping of object data (ARCHITECTURE.md §4).
//!
//! An object's bytes (or one multipart part's) are cut into stripes of `stripe_bytes`;
//! each stripe is split into `data_shards` equal pieces and coded into `parity_shards`
//! more. Piece `i` of every stripe goes, in stripe order, to shard `i`: a shard file holds
//! one block per stripe (`store::chunks`). Any `data_shards` of the pieces of a stripe
//! rebuild it.
//!
//! Stripe size: 1 MiB by default ([`DEFAULT_STRIPE_BYTES`]), so STANDARD (4+2) pieces are
//! 256 KiB. That size is one gRPC message per piece (far below the message limits), one
//! CRC-checked block per read, a few MiB of memory per request in flight whatever the
//! object size (one stripe buffered plus its k+m pieces), and at most one partial stripe
//! of extra reading at each end of a range GET. Pieces of that size are well inside the
//! codec's fast regime, so larger stripes would only cost memory and range-read waste.
//!
//! The last stripe is short: its pieces are `ceil(tail / data_shards)` bytes, zero-padded
//! to that, so a 20 KiB object stores 30 KiB under 4+2 instead of six 256 KiB pieces.
//! Stripe boundaries and piece sizes are a pure function of (layout, object length); the
//! length lives in the object's metadata, and decoding trims the padding with it.
//!
//! What this module does not do: I/O, placement, CRCs (the chunk store checks those; a
//! piece that failed its CRC is passed here as missing).

use std::ops::Range;

use bytes::Bytes;
use reed_solomon_erasure::galois_8::ReedSolomon;
use serde::{Deserialize, Serialize};

use super::model::ShardLayout;
use crate::store::chunks::{ShardFormat, MAX_PIECE_BYTES, MAX_TOTAL_SHARDS};

/// Default stripe length: 1 MiB (see the module docs for why).
pub const DEFAULT_STRIPE_BYTES: u32 = 1024 * 1024;

/// How one blob is erasure coded. Comes from the object's storage class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ErasureLayout {
    pub data_shards: u8,
    pub parity_shards: u8,
    /// Object bytes per stripe; a multiple of `data_shards`.
    pub stripe_bytes: u32,
}

/// The stored form of a layout (`model::ShardLayout`, inside an object's metadata) and
/// this working form describe the same thing; stored layouts are validated when used.
impl From<ShardLayout> for ErasureLayout {
    fn from(l: ShardLayout) -> Self {
        ErasureLayout {
            data_shards: l.data_shards,
            parity_shards: l.parity_shards,
            stripe_bytes: l.stripe_bytes,
        }
    }
}

impl From<ErasureLayout> for ShardLayout {
    fn from(l: ErasureLayout) -> Self {
        ShardLayout {
            data_shards: l.data_shards,
            parity_shards: l.parity_shards,
            stripe_bytes: l.stripe_bytes,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ErasureError {
    #[error("invalid erasure layout {data}+{parity} with {stripe_bytes}-byte stripes: {reason}")]
    InvalidLayout {
        data: u8,
        parity: u8,
        stripe_bytes: u32,
        reason: String,
    },
    #[error("stripe {stripe}: {present} of {needed} needed pieces are readable")]
    TooFewPieces {
        stripe: u64,
        present: usize,
        needed: usize,
    },
    #[error("stripe {stripe}: {got} piece slots given, the layout has {expected} shards")]
    PieceCount {
        stripe: u64,
        got: usize,
        expected: usize,
    },
    #[error("stripe {stripe}: piece {shard} is {got} bytes, expected {expected}")]
    PieceSize {
        stripe: u64,
        shard: usize,
        got: usize,
        expected: usize,
    },
    #[error("stripe {stripe}: {detail}")]
    InvalidStripe { stripe: u64, detail: String },
    #[error("stripe {stripe} does not exist in an object of {object_bytes} bytes")]
    NoSuchStripe { stripe: u64, object_bytes: u64 },
    #[error("byte range {start}..{end} is outside an object of {object_bytes} bytes")]
    RangeOutOfBounds {
        start: u64,
        end: u64,
        object_bytes: u64,
    },
    #[error("reed-solomon: {0}")]
    Codec(String),
}

impl ErasureLayout {
    /// 4 data + 2 parity shards: 2 per zone over 3 zones survives losing a zone.
    pub const STANDARD: ErasureLayout = ErasureLayout {
        data_shards: 4,
        parity_shards: 2,
        stripe_bytes: DEFAULT_STRIPE_BYTES,
    };

    pub fn new(
        data_shards: u8,
        parity_shards: u8,
        stripe_bytes: u32,
    ) -> Result<Self, ErasureError> {
        let layout = ErasureLayout {
            data_shards,
            parity_shards,
            stripe_bytes,
        };
        layout.validate()?;
        Ok(layout)
    }

    /// Check a layout that came from config or from stored metadata.
    pub fn validate(&self) -> Result<(), ErasureError> {
        let bad = |reason: String| ErasureError::InvalidLayout {
            data: self.data_shards,
            parity: self.parity_shards,
            stripe_bytes: self.stripe_bytes,
            reason,
        };
        if self.data_shards == 0 {
            return Err(bad("at least one data shard is needed".into()));
        }
        if self.total_shards() > MAX_TOTAL_SHARDS {
            return Err(bad(format!("more than {MAX_TOTAL_SHARDS} shards")));
        }
        if self.stripe_bytes == 0
            || !self
                .stripe_bytes
                .is_multiple_of(u32::from(self.data_shards))
        {
            return Err(bad(
                "the stripe must be a positive multiple of the data shards".into(),
            ));
        }
        if self.piece_bytes() > MAX_PIECE_BYTES {
            return Err(bad(format!(
                "pieces of {} bytes exceed the {MAX_PIECE_BYTES}-byte limit",
                self.piece_bytes()
            )));
        }
        Ok(())
    }

    pub fn total_shards(&self) -> u16 {
        u16::from(self.data_shards) + u16::from(self.parity_shards)
    }

    /// Piece length of a full stripe.
    pub fn piece_bytes(&self) -> u32 {
        self.stripe_bytes / u32::from(self.data_shards.max(1))
    }

    /// The shard file format for this layout's shards.
    pub fn shard_format(&self) -> ShardFormat {
        ShardFormat {
            data_shards: self.data_shards,
            parity_shards: self.parity_shards,
            piece_bytes: self.piece_bytes(),
        }
    }

    pub fn stripe_count(&self, object_bytes: u64) -> u64 {
        object_bytes.div_ceil(u64::from(self.stripe_bytes))
    }

    /// Stripe `index` of an object of `object_bytes`.
    pub fn stripe(&self, object_bytes: u64, index: u64) -> Result<Stripe, ErasureError> {
        if index >= self.stripe_count(object_bytes) {
            return Err(ErasureError::NoSuchStripe {
                stripe: index,
                object_bytes,
            });
        }
        let offset = index * u64::from(self.stripe_bytes);
        // Less than stripe_bytes (a u32) by the check above.
        let data_bytes = (object_bytes - offset).min(u64::from(self.stripe_bytes)) as u32;
        Ok(Stripe {
            index,
            offset,
            data_bytes,
            piece_bytes: data_bytes.div_ceil(u32::from(self.data_shards)),
        })
    }

    /// Every stripe of an object, in order.
    pub fn stripes(&self, object_bytes: u64) -> impl Iterator<Item = Stripe> + '_ {
        (0..self.stripe_count(object_bytes)).filter_map(move |i| self.stripe(object_bytes, i).ok())
    }

    /// Bytes one shard of the object holds (pieces only).
    pub fn shard_bytes(&self, object_bytes: u64) -> u64 {
        let full = object_bytes / u64::from(self.stripe_bytes);
        let tail = object_bytes % u64::from(self.stripe_bytes);
        full * u64::from(self.piece_bytes()) + tail.div_ceil(u64::from(self.data_shards))
    }

    /// The stripes that hold bytes `start..end` of an object of `object_bytes`.
    pub fn range(
        &self,
        object_bytes: u64,
        start: u64,
        end: u64,
    ) -> Result<StripeRange, ErasureError> {
        if start > end || end > object_bytes {
            return Err(ErasureError::RangeOutOfBounds {
                start,
                end,
                object_bytes,
            });
        }
        let stripe = u64::from(self.stripe_bytes);
        let stripes = if start == end {
            0..0
        } else {
            start / stripe..end.div_ceil(stripe)
        };
        Ok(StripeRange {
            stripes,
            start,
            end,
            stripe_bytes: stripe,
        })
    }

    fn codec(&self) -> Result<Option<ReedSolomon>, ErasureError> {
        self.validate()?;
        if self.parity_shards == 0 {
            return Ok(None);
        }
        ReedSolomon::new(
            usize::from(self.data_shards),
            usize::from(self.parity_shards),
        )
        .map(Some)
        .map_err(|e| ErasureError::Codec(e.to_string()))
    }
}

/// Where one stripe sits in its object and how long its pieces are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stripe {
    pub index: u64,
    /// Offset of the stripe's first byte in the object.
    pub offset: u64,
    /// Object bytes in this stripe (less than the layout's stripe only for the last).
    pub data_bytes: u32,
    /// Length of each of this stripe's pieces.
    pub piece_bytes: u32,
}

/// The stripes covering a byte range, and which part of each the range keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StripeRange {
    /// Indices of the stripes to read, in order (empty for an empty range).
    pub stripes: Range<u64>,
    start: u64,
    end: u64,
    stripe_bytes: u64,
}

impl StripeRange {
    /// The part of stripe `index`'s data (as returned by [`Decoder::decode`]) inside the
    /// range; empty for a stripe outside it.
    pub fn within(&self, index: u64) -> Range<usize> {
        let stripe_start = index.saturating_mul(self.stripe_bytes);
        let stripe_end = stripe_start.saturating_add(self.stripe_bytes);
        let lo = self.start.max(stripe_start);
        let hi = self.end.min(stripe_end);
        if lo >= hi {
            return 0..0;
        }
        // Both below stripe_bytes, a u32.
        (lo - stripe_start) as usize..(hi - stripe_start) as usize
    }

    /// Bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// One coded stripe: `pieces[i]` goes to shard `i` (data pieces first, then parity).
#[derive(Clone, Debug)]
pub struct EncodedStripe {
    pub index: u64,
    pub data_bytes: u32,
    pub pieces: Vec<Bytes>,
}

/// Turns a stream of object bytes into coded stripes, holding at most one stripe.
///
/// ```text
/// let mut enc = Encoder::new(layout)?;
/// for chunk in body { let mut rest = &chunk[..];
///     while !rest.is_empty() { if let Some(s) = enc.push(&mut rest)? { send(s) } } }
/// if let Some(s) = enc.finish()? { send(s) }
/// ```
pub struct Encoder {
    layout: ErasureLayout,
    codec: Option<ReedSolomon>,
    /// The stripe being filled: its data bytes, with room for the parity pieces.
    buf: Vec<u8>,
    next_stripe: u64,
    bytes_in: u64,
}

impl Encoder {
    pub fn new(layout: ErasureLayout) -> Result<Self, ErasureError> {
        let codec = layout.codec()?;
        Ok(Encoder {
            layout,
            codec,
            buf: Vec::with_capacity(Self::buffer_bytes(&layout)),
            next_stripe: 0,
            bytes_in: 0,
        })
    }

    fn buffer_bytes(layout: &ErasureLayout) -> usize {
        layout.piece_bytes() as usize * usize::from(layout.total_shards())
    }

    /// Object bytes taken so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Move bytes from the front of `data` into the current stripe, up to its end. Returns
    /// the stripe, coded, when that fills it; call again while `data` is not empty.
    pub fn push(&mut self, data: &mut &[u8]) -> Result<Option<EncodedStripe>, ErasureError> {
        let stripe = self.layout.stripe_bytes as usize;
        let take = (stripe - self.buf.len()).min(data.len());
        let (head, rest) = data.split_at(take);
        self.buf.extend_from_slice(head);
        *data = rest;
        self.bytes_in += take as u64;
        if self.buf.len() == stripe {
            return self.seal().map(Some);
        }
        Ok(None)
    }

    /// Code the last, partial stripe, if any bytes are waiting.
    pub fn finish(mut self) -> Result<Option<EncodedStripe>, ErasureError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        self.seal().map(Some)
    }

    fn seal(&mut self) -> Result<EncodedStripe, ErasureError> {
        let data_bytes = self.buf.len();
        let k = usize::from(self.layout.data_shards);
        let piece = data_bytes.div_ceil(k);
        let total = usize::from(self.layout.total_shards());
        // Zero padding after the data, then room for parity; within the reserved capacity.
        self.buf.resize(piece * total, 0);
        if let Some(codec) = &self.codec {
            let mut pieces: Vec<&mut [u8]> = self.buf.chunks_exact_mut(piece).collect();
            codec
                .encode(&mut pieces)
                .map_err(|e| ErasureError::Codec(e.to_string()))?;
        }
        let next = Vec::with_capacity(Self::buffer_bytes(&self.layout));
        let coded = Bytes::from(std::mem::replace(&mut self.buf, next));
        let index = self.next_stripe;
        self.next_stripe += 1;
        Ok(EncodedStripe {
            index,
            data_bytes: data_bytes as u32,
            pieces: (0..total)
                .map(|i| coded.slice(i * piece..(i + 1) * piece))
                .collect(),
        })
    }
}

/// Rebuilds stripes from any `data_shards` of their pieces.
pub struct Decoder {
    layout: ErasureLayout,
    codec: Option<ReedSolomon>,
}

impl Decoder {
    pub fn new(layout: ErasureLayout) -> Result<Self, ErasureError> {
        Ok(Decoder {
            codec: layout.codec()?,
            layout,
        })
    }

    pub fn layout(&self) -> &ErasureLayout {
        &self.layout
    }

    /// Check the slots and return which shards are present.
    fn present(
        &self,
        stripe: &Stripe,
        pieces: &[Option<Bytes>],
    ) -> Result<Vec<usize>, ErasureError> {
        let total = usize::from(self.layout.total_shards());
        let k = u64::from(self.layout.data_shards);
        if stripe.data_bytes == 0
            || u64::from(stripe.piece_bytes) * k < u64::from(stripe.data_bytes)
        {
            return Err(ErasureError::InvalidStripe {
                stripe: stripe.index,
                detail: format!(
                    "{} data bytes do not fit {k} pieces of {}",
                    stripe.data_bytes, stripe.piece_bytes
                ),
            });
        }
        if pieces.len() != total {
            return Err(ErasureError::PieceCount {
                stripe: stripe.index,
                got: pieces.len(),
                expected: total,
            });
        }
        let mut present = Vec::with_capacity(total);
        for (shard, piece) in pieces.iter().enumerate() {
            if let Some(p) = piece {
                if p.len() != stripe.piece_bytes as usize {
                    return Err(ErasureError::PieceSize {
                        stripe: stripe.index,
                        shard,
                        got: p.len(),
                        expected: stripe.piece_bytes as usize,
                    });
                }
                present.push(shard);
            }
        }
        let needed = usize::from(self.layout.data_shards);
        if present.len() < needed {
            return Err(ErasureError::TooFewPieces {
                stripe: stripe.index,
                present: present.len(),
                needed,
            });
        }
        Ok(present)
    }

    /// The stripe's object bytes (`stripe.data_bytes` of them, padding trimmed) from its
    /// pieces: `pieces[i]` is shard `i`'s piece, `None` if missing or corrupt. Uses only
    /// the data pieces when they are all there, else the first `data_shards` present.
    pub fn decode(&self, stripe: &Stripe, pieces: &[Option<Bytes>]) -> Result<Bytes, ErasureError> {
        let present = self.present(stripe, pieces)?;
        let k = usize::from(self.layout.data_shards);
        let piece = stripe.piece_bytes as usize;
        let data_bytes = stripe.data_bytes as usize;

        if present[..k]
            .iter()
            .enumerate()
            .all(|(i, &shard)| i == shard)
        {
            if k == 1 {
                if let Some(p) = &pieces[0] {
                    return Ok(p.slice(..data_bytes));
                }
            }
            let mut out = Vec::with_capacity(piece * k);
            for p in pieces[..k].iter().flatten() {
                out.extend_from_slice(p);
            }
            out.truncate(data_bytes);
            return Ok(Bytes::from(out));
        }

        let mut buf = self.reconstruct(stripe, pieces, &present[..k], true)?;
        buf.truncate(data_bytes);
        Ok(Bytes::from(buf))
    }

    /// Every piece of the stripe, data and parity, rebuilt from any `data_shards` present
    /// ones: what repair writes to the shards that were lost.
    pub fn rebuild_pieces(
        &self,
        stripe: &Stripe,
        pieces: &[Option<Bytes>],
    ) -> Result<Vec<Bytes>, ErasureError> {
        let present = self.present(stripe, pieces)?;
        let k = usize::from(self.layout.data_shards);
        let piece = stripe.piece_bytes as usize;
        let all = Bytes::from(self.reconstruct(stripe, pieces, &present[..k], false)?);
        Ok((0..usize::from(self.layout.total_shards()))
            .map(|i| all.slice(i * piece..(i + 1) * piece))
            .collect())
    }

    /// All slots laid out back to back, the chosen ones filled in and the rest rebuilt
    /// (only the data ones when `data_only`).
    fn reconstruct(
        &self,
        stripe: &Stripe,
        pieces: &[Option<Bytes>],
        chosen: &[usize],
        data_only: bool,
    ) -> Result<Vec<u8>, ErasureError> {
        let piece = stripe.piece_bytes as usize;
        let total = usize::from(self.layout.total_shards());
        let mut buf = vec![0u8; piece * total];
        let mut slots: Vec<(&mut [u8], bool)> = buf
            .chunks_exact_mut(piece.max(1))
            .map(|slot| (slot, false))
            .collect();
        for &shard in chosen {
            if let (Some(slot), Some(p)) = (slots.get_mut(shard), &pieces[shard]) {
                slot.0.copy_from_slice(p);
                slot.1 = true;
            }
        }
        if chosen.len() < total {
            let Some(codec) = &self.codec else {
                return Err(ErasureError::TooFewPieces {
                    stripe: stripe.index,
                    present: chosen.len(),
                    needed: total,
                });
            };
            let result = if data_only {
                codec.reconstruct_data(&mut slots)
            } else {
                codec.reconstruct(&mut slots)
            };
            result.map_err(|e| ErasureError::Codec(e.to_string()))?;
        }
        drop(slots);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4+2 with 64-byte stripes: small enough to test every boundary quickly.
    const SMALL: ErasureLayout = ErasureLayout {
        data_shards: 4,
        parity_shards: 2,
        stripe_bytes: 64,
    };

    fn object(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Encode in uneven chunks, as a body arrives from the network.
    fn encode(layout: ErasureLayout, data: &[u8]) -> Vec<EncodedStripe> {
        let mut enc = Encoder::new(layout).unwrap();
        let mut out = Vec::new();
        for chunk in data.chunks(37) {
            let mut rest = chunk;
            while !rest.is_empty() {
                if let Some(s) = enc.push(&mut rest).unwrap() {
                    out.push(s);
                }
            }
        }
        assert_eq!(enc.bytes_in(), data.len() as u64);
        out.extend(enc.finish().unwrap());
        out
    }

    fn decode_all(
        layout: ErasureLayout,
        len: u64,
        stripes: &[EncodedStripe],
        missing: &[usize],
    ) -> Result<Vec<u8>, ErasureError> {
        let dec = Decoder::new(layout).unwrap();
        let mut out = Vec::new();
        for (coded, stripe) in stripes.iter().zip(layout.stripes(len)) {
            assert_eq!(coded.index, stripe.index);
            assert_eq!(coded.data_bytes, stripe.data_bytes);
            let pieces: Vec<Option<Bytes>> = coded
                .pieces
                .iter()
                .enumerate()
                .map(|(i, p)| (!missing.contains(&i)).then(|| p.clone()))
                .collect();
            out.extend_from_slice(&dec.decode(&stripe, &pieces)?);
        }
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_boundary() {
        let s = SMALL.stripe_bytes as usize;
        for len in [0, 1, 3, 4, 5, s - 1, s, s + 1, 2 * s - 1, 5 * s, 5 * s + 13] {
            let data = object(len);
            let stripes = encode(SMALL, &data);
            assert_eq!(
                stripes.len() as u64,
                SMALL.stripe_count(len as u64),
                "{len}"
            );
            for st in &stripes {
                assert_eq!(st.pieces.len(), 6);
                let piece = (st.data_bytes as usize).div_ceil(4);
                assert!(st.pieces.iter().all(|p| p.len() == piece));
            }
            let shard_total: usize = stripes.iter().map(|st| st.pieces[0].len()).sum();
            assert_eq!(shard_total as u64, SMALL.shard_bytes(len as u64), "{len}");
            assert_eq!(decode_all(SMALL, len as u64, &stripes, &[]).unwrap(), data);
        }
    }

    #[test]
    fn standard_layout_round_trips() {
        let layout = ErasureLayout::STANDARD;
        assert_eq!(layout.piece_bytes(), 256 * 1024);
        let s = layout.stripe_bytes as usize;
        for len in [0, 1, s - 1, s, s + 1, 3 * s + 12_345] {
            let data = object(len);
            let stripes = encode(layout, &data);
            assert_eq!(decode_all(layout, len as u64, &stripes, &[]).unwrap(), data);
            assert_eq!(
                decode_all(layout, len as u64, &stripes, &[0, 5]).unwrap(),
                data
            );
        }
    }

    #[test]
    fn any_two_of_six_missing_rebuild() {
        let len = 3 * SMALL.stripe_bytes as usize + 17;
        let data = object(len);
        let stripes = encode(SMALL, &data);
        for a in 0..6 {
            assert_eq!(decode_all(SMALL, len as u64, &stripes, &[a]).unwrap(), data);
            for b in a + 1..6 {
                assert_eq!(
                    decode_all(SMALL, len as u64, &stripes, &[a, b]).unwrap(),
                    data,
                    "missing {a} and {b}"
                );
            }
        }
    }

    #[test]
    fn more_than_parity_missing_is_an_error() {
        let len = 100;
        let stripes = encode(SMALL, &object(len));
        let err = decode_all(SMALL, len as u64, &stripes, &[0, 2, 4]).unwrap_err();
        assert_eq!(
            err,
            ErasureError::TooFewPieces {
                stripe: 0,
                present: 3,
                needed: 4
            }
        );
    }

    #[test]
    fn rebuild_restores_lost_parity_and_data() {
        let len = 2 * SMALL.stripe_bytes as u64 + 9;
        let stripes = encode(SMALL, &object(len as usize));
        let dec = Decoder::new(SMALL).unwrap();
        for (coded, stripe) in stripes.iter().zip(SMALL.stripes(len)) {
            let mut pieces: Vec<Option<Bytes>> = coded.pieces.iter().cloned().map(Some).collect();
            pieces[1] = None;
            pieces[5] = None;
            assert_eq!(dec.rebuild_pieces(&stripe, &pieces).unwrap(), coded.pieces);
        }
    }

    #[test]
    fn bad_piece_slots_are_errors() {
        let stripes = encode(SMALL, &object(64));
        let stripe = SMALL.stripe(64, 0).unwrap();
        let dec = Decoder::new(SMALL).unwrap();
        let mut pieces: Vec<Option<Bytes>> = stripes[0].pieces.iter().cloned().map(Some).collect();
        assert!(matches!(
            dec.decode(&stripe, &pieces[..5]),
            Err(ErasureError::PieceCount { got: 5, .. })
        ));
        pieces[3] = Some(Bytes::from_static(b"short"));
        assert!(matches!(
            dec.decode(&stripe, &pieces),
            Err(ErasureError::PieceSize { shard: 3, .. })
        ));
    }

    #[test]
    fn layouts_without_parity_or_with_one_data_shard() {
        for layout in [
            ErasureLayout::new(3, 0, 48).unwrap(),
            ErasureLayout::new(1, 2, 16).unwrap(),
        ] {
            let data = object(100);
            let stripes = encode(layout, &data);
            assert_eq!(decode_all(layout, 100, &stripes, &[]).unwrap(), data);
        }
        let no_parity = ErasureLayout::new(3, 0, 48).unwrap();
        let stripes = encode(no_parity, &object(100));
        assert!(decode_all(no_parity, 100, &stripes, &[1]).is_err());
        let mirror = ErasureLayout::new(1, 2, 16).unwrap();
        let stripes = encode(mirror, &object(100));
        assert_eq!(
            decode_all(mirror, 100, &stripes, &[0, 2]).unwrap(),
            object(100)
        );
    }

    #[test]
    fn invalid_layouts_are_refused() {
        assert!(ErasureLayout::new(0, 2, 64).is_err());
        assert!(ErasureLayout::new(4, 2, 63).is_err());
        assert!(ErasureLayout::new(4, 2, 0).is_err());
        assert!(ErasureLayout::new(200, 100, 200).is_err());
        assert!(ErasureLayout::new(1, 1, MAX_PIECE_BYTES + 1).is_err());
        assert!(ErasureLayout::new(255, 1, 255).is_ok());
        assert!(Encoder::new(ErasureLayout {
            data_shards: 4,
            parity_shards: 2,
            stripe_bytes: 10
        })
        .is_err());
        let err = ErasureLayout::new(4, 2, 63).unwrap_err().to_string();
        assert!(err.contains("multiple of the data shards"), "{err}");
    }

    #[test]
    fn stripes_describe_the_object() {
        let l = SMALL;
        assert_eq!(l.stripe_count(0), 0);
        assert_eq!(l.stripe_count(1), 1);
        assert_eq!(l.stripe_count(64), 1);
        assert_eq!(l.stripe_count(65), 2);
        assert_eq!(
            l.stripe(130, 2).unwrap(),
            Stripe {
                index: 2,
                offset: 128,
                data_bytes: 2,
                piece_bytes: 1
            }
        );
        assert_eq!(l.stripe(130, 1).unwrap().piece_bytes, 16);
        assert!(matches!(
            l.stripe(130, 3),
            Err(ErasureError::NoSuchStripe { .. })
        ));
        assert!(matches!(
            l.stripe(0, 0),
            Err(ErasureError::NoSuchStripe { .. })
        ));
        assert_eq!(l.stripes(130).count(), 3);
    }

    #[test]
    fn ranges_map_to_stripes_and_offsets() {
        let l = SMALL;
        let len = 200;
        let data = object(len);
        let stripes = encode(l, &data);
        let dec = Decoder::new(l).unwrap();
        for (start, end) in [
            (0, 0),
            (0, 1),
            (0, 200),
            (63, 65),
            (64, 128),
            (10, 20),
            (199, 200),
            (70, 190),
        ] {
            let r = l.range(len as u64, start, end).unwrap();
            assert_eq!(r.len(), end - start);
            let mut got = Vec::new();
            for i in r.stripes.clone() {
                let stripe = l.stripe(len as u64, i).unwrap();
                let pieces: Vec<Option<Bytes>> = stripes[i as usize]
                    .pieces
                    .iter()
                    .cloned()
                    .map(Some)
                    .collect();
                let bytes = dec.decode(&stripe, &pieces).unwrap();
                let within = r.within(i);
                assert!(!within.is_empty(), "stripe {i} of {start}..{end}");
                got.extend_from_slice(&bytes[within]);
            }
            assert_eq!(got, &data[start as usize..end as usize], "{start}..{end}");
        }
        let r = l.range(200, 63, 65).unwrap();
        assert_eq!(r.stripes, 0..2);
        assert_eq!(
            (r.within(0), r.within(1), r.within(2)),
            (63..64, 0..1, 0..0)
        );
        assert!(l.range(200, 0, 201).is_err());
        assert!(l.range(200, 5, 4).is_err());
        assert!(l.range(0, 0, 0).unwrap().is_empty());
    }

    #[test]
    fn encoder_memory_stays_one_stripe() {
        let layout = ErasureLayout::STANDARD;
        let mut enc = Encoder::new(layout).unwrap();
        let chunk = vec![7u8; 3 * layout.stripe_bytes as usize + 5];
        let mut rest = &chunk[..];
        let mut stripes = 0;
        while !rest.is_empty() {
            if enc.push(&mut rest).unwrap().is_some() {
                stripes += 1;
            }
            assert!(enc.buf.capacity() <= 6 * layout.piece_bytes() as usize);
        }
        assert_eq!(stripes, 3);
        assert_eq!(enc.finish().unwrap().map(|s| s.data_bytes), Some(5));
    }
}
