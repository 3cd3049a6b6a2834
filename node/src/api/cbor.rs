//! A small CBOR (RFC 8949) codec for the edge's binary JSON-like protocols (Kinesis's
//! `application/x-amz-cbor-1.1`): bytes to a `Cbor` tree and back.
//!
//! The decoder reads every major type: integers (the whole range, -2^64 to 2^64 − 1),
//! byte and text strings (definite and indefinite length), arrays and maps (definite and
//! indefinite), tags (kept with their number; what a tag means is the protocol's to say),
//! half, single and double floats, and the simple values false, true, null and undefined.
//! It takes exactly one item, and refuses rather than guesses: reserved or unassigned
//! encodings, a `break` out of place, chunks of another type inside an indefinite string,
//! text that is not UTF-8, bytes after the item. Untrusted input cannot make it panic,
//! recurse without bound (`Limits::max_depth`) or allocate much more than the input: a
//! declared length is checked against the bytes that remain before anything is reserved,
//! and the number of items is capped (`Limits::max_items`).
//!
//! The encoder writes the shortest head for every length and integer, definite lengths
//! only, and floats as doubles (always exact; it does not shorten floats).

/// One CBOR data item.
#[derive(Debug, Clone, PartialEq)]
pub enum Cbor {
    /// Major types 0 and 1: -2^64 ..= 2^64 − 1.
    Int(i128),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Cbor>),
    /// Pairs in the order they were written; keys may be any item.
    Map(Vec<(Cbor, Cbor)>),
    /// A tag number and the item it tags.
    Tag(u64, Box<Cbor>),
    Float(f64),
    Bool(bool),
    Null,
    Undefined,
}

/// How much a decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Arrays, maps and tags nested inside one another.
    pub max_depth: usize,
    /// Data items in the whole input (a map entry counts its key and its value).
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_items: 1_000_000,
        }
    }
}

/// Why bytes are not one well-formed CBOR item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    #[error("the CBOR input ends inside an item (at byte {at})")]
    Truncated { at: usize },
    #[error("malformed CBOR at byte {at}: {what}")]
    Malformed { at: usize, what: &'static str },
    #[error("CBOR nested more than {0} levels deep")]
    TooDeep(usize),
    #[error("more than {0} CBOR items")]
    TooManyItems(usize),
    #[error("{0} bytes follow the CBOR item")]
    TrailingBytes(usize),
}

/// Decode `input`, which must hold exactly one item, with the default limits.
pub fn decode(input: &[u8]) -> Result<Cbor, CborError> {
    decode_with(input, Limits::default())
}

/// Decode `input`, which must hold exactly one item.
pub fn decode_with(input: &[u8], limits: Limits) -> Result<Cbor, CborError> {
    let mut d = Decoder {
        input,
        at: 0,
        items: 0,
        limits,
    };
    let item = d.item(0)?;
    match input.len() - d.at {
        0 => Ok(item),
        n => Err(CborError::TrailingBytes(n)),
    }
}

fn malformed(at: usize, what: &'static str) -> CborError {
    CborError::Malformed { at, what }
}

/// What an initial byte and its argument say.
enum Head {
    /// Major type and argument (a value, a length or a count).
    Definite(u8, u64),
    /// Major type 2, 3, 4 or 5 with indefinite length.
    Indefinite(u8),
    /// Major type 7 with additional information 25, 26 or 27: a float of that width.
    Float(f64),
    /// Major type 7 with a simple value (additional information < 24, or 24 and a byte).
    Simple(u8),
    Break,
}

struct Decoder<'a> {
    input: &'a [u8],
    at: usize,
    items: usize,
    limits: Limits,
}

impl Decoder<'_> {
    fn remaining(&self) -> usize {
        self.input.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CborError> {
        if n > self.remaining() {
            return Err(CborError::Truncated {
                at: self.input.len(),
            });
        }
        let bytes = &self.input[self.at..self.at + n];
        self.at += n;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<u64, CborError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn head(&mut self) -> Result<Head, CborError> {
        let start = self.at;
        let initial = self.take(1)?[0];
        let (major, info) = (initial >> 5, initial & 0x1f);
        if major == 7 {
            return Ok(match info {
                0..=23 => Head::Simple(info),
                24 => {
                    let v = self.uint(1)? as u8;
                    if v < 32 {
                        return Err(malformed(start, "a two-byte simple value below 32"));
                    }
                    Head::Simple(v)
                }
                25 => Head::Float(half_to_f64(self.uint(2)? as u16)),
                26 => Head::Float(f64::from(f32::from_bits(self.uint(4)? as u32))),
                27 => Head::Float(f64::from_bits(self.uint(8)?)),
                31 => Head::Break,
                _ => return Err(malformed(start, "reserved additional information")),
            });
        }
        let argument = match info {
            0..=23 => u64::from(info),
            24 => self.uint(1)?,
            25 => self.uint(2)?,
            26 => self.uint(4)?,
            27 => self.uint(8)?,
            31 if (2..=5).contains(&major) => return Ok(Head::Indefinite(major)),
            31 => return Err(malformed(start, "indefinite length on an integer or tag")),
            _ => return Err(malformed(start, "reserved additional information")),
        };
        Ok(Head::Definite(major, argument))
    }

    /// A length or count that cannot be more than what is left of the input, `per_unit`
    /// bytes at least per unit.
    fn length(&self, declared: u64, per_unit: usize) -> Result<usize, CborError> {
        usize::try_from(declared)
            .ok()
            .filter(|&n| {
                n.checked_mul(per_unit)
                    .is_some_and(|b| b <= self.remaining())
            })
            .ok_or(CborError::Truncated {
                at: self.input.len(),
            })
    }

    fn count_item(&mut self) -> Result<(), CborError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(CborError::TooManyItems(self.limits.max_items));
        }
        Ok(())
    }

    fn item(&mut self, depth: usize) -> Result<Cbor, CborError> {
        let start = self.at;
        let head = self.head()?;
        self.item_after(start, head, depth)
    }

    fn item_after(&mut self, start: usize, head: Head, depth: usize) -> Result<Cbor, CborError> {
        self.count_item()?;
        match head {
            Head::Definite(0, n) => Ok(Cbor::Int(i128::from(n))),
            Head::Definite(1, n) => Ok(Cbor::Int(-1 - i128::from(n))),
            Head::Definite(2, len) => {
                let len = self.length(len, 1)?;
                Ok(Cbor::Bytes(self.take(len)?.to_vec()))
            }
            Head::Definite(3, len) => {
                let len = self.length(len, 1)?;
                let bytes = self.take(len)?;
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| malformed(start, "a text string that is not UTF-8"))?;
                Ok(Cbor::Text(text.to_string()))
            }
            Head::Definite(4, count) => {
                let depth = self.deeper(depth)?;
                let count = self.length(count, 1)?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.item(depth)?);
                }
                Ok(Cbor::Array(items))
            }
            Head::Definite(5, count) => {
                let depth = self.deeper(depth)?;
                let count = self.length(count, 2)?;
                let mut pairs = Vec::with_capacity(count);
                for _ in 0..count {
                    let key = self.item(depth)?;
                    pairs.push((key, self.item(depth)?));
                }
                Ok(Cbor::Map(pairs))
            }
            Head::Definite(6, tag) => {
                let depth = self.deeper(depth)?;
                Ok(Cbor::Tag(tag, Box::new(self.item(depth)?)))
            }
            Head::Definite(..) => Err(malformed(start, "unknown major type")),
            Head::Indefinite(2) => Ok(Cbor::Bytes(self.chunks(2)?)),
            Head::Indefinite(3) => {
                let bytes = self.chunks(3)?;
                // Each chunk was checked to be UTF-8 on its own, so the whole is too.
                String::from_utf8(bytes)
                    .map(Cbor::Text)
                    .map_err(|_| malformed(start, "a text string that is not UTF-8"))
            }
            Head::Indefinite(4) => {
                let depth = self.deeper(depth)?;
                let mut items = Vec::new();
                loop {
                    let at = self.at;
                    match self.head()? {
                        Head::Break => return Ok(Cbor::Array(items)),
                        head => items.push(self.item_after(at, head, depth)?),
                    }
                }
            }
            Head::Indefinite(_) => {
                let depth = self.deeper(depth)?;
                let mut pairs = Vec::new();
                loop {
                    let at = self.at;
                    let key = match self.head()? {
                        Head::Break => return Ok(Cbor::Map(pairs)),
                        head => self.item_after(at, head, depth)?,
                    };
                    let at = self.at;
                    match self.head()? {
                        Head::Break => {
                            return Err(malformed(at, "a map ends after a key, before its value"))
                        }
                        head => pairs.push((key, self.item_after(at, head, depth)?)),
                    }
                }
            }
            Head::Float(x) => Ok(Cbor::Float(x)),
            Head::Simple(20) => Ok(Cbor::Bool(false)),
            Head::Simple(21) => Ok(Cbor::Bool(true)),
            Head::Simple(22) => Ok(Cbor::Null),
            Head::Simple(23) => Ok(Cbor::Undefined),
            Head::Simple(_) => Err(malformed(start, "an unassigned simple value")),
            Head::Break => Err(malformed(
                start,
                "a break outside an indefinite-length item",
            )),
        }
    }

    fn deeper(&self, depth: usize) -> Result<usize, CborError> {
        if depth >= self.limits.max_depth {
            return Err(CborError::TooDeep(self.limits.max_depth));
        }
        Ok(depth + 1)
    }

    /// The chunks of an indefinite-length string of `major` type, up to its break.
    fn chunks(&mut self, major: u8) -> Result<Vec<u8>, CborError> {
        let mut out = Vec::new();
        loop {
            let at = self.at;
            match self.head()? {
                Head::Break => return Ok(out),
                Head::Definite(m, len) if m == major => {
                    self.count_item()?;
                    let len = self.length(len, 1)?;
                    let chunk = self.take(len)?;
                    if major == 3 && std::str::from_utf8(chunk).is_err() {
                        return Err(malformed(at, "a text chunk that is not UTF-8"));
                    }
                    out.extend_from_slice(chunk);
                }
                _ => return Err(malformed(
                    at,
                    "a chunk of an indefinite-length string is not a definite string of its type",
                )),
            }
        }
    }
}

/// An IEEE 754 half-precision float's value.
fn half_to_f64(bits: u16) -> f64 {
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    let magnitude = match exponent {
        // Subnormal: fraction × 2^-24.
        0 => fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        // Normal: (1024 + fraction) × 2^(exponent − 25), i.e. 1.fraction × 2^(exponent − 15).
        _ => (1024.0 + fraction) * 2f64.powi(exponent - 25),
    };
    if bits & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// The bytes of `item`.
pub fn encode(item: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, item);
    out
}

fn head(out: &mut Vec<u8>, major: u8, argument: u64) {
    let major = major << 5;
    match argument {
        0..=23 => out.push(major | argument as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, argument as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(argument as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(argument as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&argument.to_be_bytes());
        }
    }
}

/// Append the bytes of `item` to `out`.
pub fn encode_into(out: &mut Vec<u8>, item: &Cbor) {
    match item {
        Cbor::Int(n) => match (u64::try_from(*n), u64::try_from(-1 - *n)) {
            (Ok(u), _) => head(out, 0, u),
            (_, Ok(m)) => head(out, 1, m),
            // Beyond what CBOR integers hold (the decoder never makes one): the nearest
            // double.
            _ => encode_into(out, &Cbor::Float(*n as f64)),
        },
        Cbor::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Cbor::Text(s) => {
            head(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Cbor::Array(items) => {
            head(out, 4, items.len() as u64);
            for i in items {
                encode_into(out, i);
            }
        }
        Cbor::Map(pairs) => {
            head(out, 5, pairs.len() as u64);
            for (k, v) in pairs {
                encode_into(out, k);
                encode_into(out, v);
            }
        }
        Cbor::Tag(tag, inner) => {
            head(out, 6, *tag);
            encode_into(out, inner);
        }
        Cbor::Float(x) => {
            out.push(0xfb);
            out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        Cbor::Bool(false) => out.push(0xf4),
        Cbor::Bool(true) => out.push(0xf5),
        Cbor::Null => out.push(0xf6),
        Cbor::Undefined => out.push(0xf7),
    }
}

impl Cbor {
    pub fn text(s: impl Into<String>) -> Cbor {
        Cbor::Text(s.into())
    }

    /// The value of a map's text key `name`, if this is a map and has it.
    pub fn get(&self, name: &str) -> Option<&Cbor> {
        match self {
            Cbor::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Cbor::Text(t) if t == name))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn map(pairs: Vec<(Cbor, Cbor)>) -> Cbor {
        Cbor::Map(pairs)
    }

    fn t(s: &str) -> Cbor {
        Cbor::text(s)
    }

    fn int(n: i128) -> Cbor {
        Cbor::Int(n)
    }

    /// RFC 8949 Appendix A: items whose shortest encoding is what the encoder writes.
    fn canonical_examples() -> Vec<(Cbor, &'static str)> {
        vec![
            (int(0), "00"),
            (int(1), "01"),
            (int(10), "0a"),
            (int(23), "17"),
            (int(24), "1818"),
            (int(25), "1819"),
            (int(100), "1864"),
            (int(1000), "1903e8"),
            (int(1_000_000), "1a000f4240"),
            (int(1_000_000_000_000), "1b000000e8d4a51000"),
            (int(18_446_744_073_709_551_615), "1bffffffffffffffff"),
            (int(-18_446_744_073_709_551_616), "3bffffffffffffffff"),
            (int(-1), "20"),
            (int(-10), "29"),
            (int(-100), "3863"),
            (int(-1000), "3903e7"),
            (Cbor::Float(1.1), "fb3ff199999999999a"),
            (Cbor::Float(1.0e300), "fb7e37e43c8800759c"),
            (Cbor::Float(-4.1), "fbc010666666666666"),
            (Cbor::Bool(false), "f4"),
            (Cbor::Bool(true), "f5"),
            (Cbor::Null, "f6"),
            (Cbor::Undefined, "f7"),
            (
                Cbor::Tag(0, Box::new(t("2013-03-21T20:04:00Z"))),
                "c074323031332d30332d32315432303a30343a30305a",
            ),
            (Cbor::Tag(1, Box::new(int(1_363_896_240))), "c11a514b67b0"),
            (
                Cbor::Tag(1, Box::new(Cbor::Float(1_363_896_240.5))),
                "c1fb41d452d9ec200000",
            ),
            (
                Cbor::Tag(23, Box::new(Cbor::Bytes(vec![1, 2, 3, 4]))),
                "d74401020304",
            ),
            (
                Cbor::Tag(32, Box::new(t("http://www.example.com"))),
                "d82076687474703a2f2f7777772e6578616d706c652e636f6d",
            ),
            (Cbor::Bytes(vec![]), "40"),
            (Cbor::Bytes(vec![1, 2, 3, 4]), "4401020304"),
            (t(""), "60"),
            (t("a"), "6161"),
            (t("IETF"), "6449455446"),
            (t("\"\\"), "62225c"),
            (t("\u{fc}"), "62c3bc"),
            (t("\u{6c34}"), "63e6b0b4"),
            (t("\u{10151}"), "64f0908591"),
            (Cbor::Array(vec![]), "80"),
            (Cbor::Array(vec![int(1), int(2), int(3)]), "83010203"),
            (
                Cbor::Array(vec![
                    int(1),
                    Cbor::Array(vec![int(2), int(3)]),
                    Cbor::Array(vec![int(4), int(5)]),
                ]),
                "8301820203820405",
            ),
            (
                Cbor::Array((1..=25).map(int).collect()),
                "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
            ),
            (map(vec![]), "a0"),
            (map(vec![(int(1), int(2)), (int(3), int(4))]), "a201020304"),
            (
                map(vec![
                    (t("a"), int(1)),
                    (t("b"), Cbor::Array(vec![int(2), int(3)])),
                ]),
                "a26161016162820203",
            ),
            (
                Cbor::Array(vec![t("a"), map(vec![(t("b"), t("c"))])]),
                "826161a161626163",
            ),
            (
                map(["a", "b", "c", "d", "e"]
                    .iter()
                    .map(|k| (t(k), t(&k.to_uppercase())))
                    .collect()),
                "a56161614161626142616361436164614461656145",
            ),
        ]
    }

    #[test]
    fn rfc_8949_examples_decode_and_encode() {
        for (item, bytes) in canonical_examples() {
            assert_eq!(decode(&hex(bytes)), Ok(item.clone()), "decoding {bytes}");
            assert_eq!(encode(&item), hex(bytes), "encoding {item:?}");
        }
    }

    #[test]
    fn rfc_8949_floats_of_every_width_decode() {
        let floats = [
            ("f90000", 0.0),
            ("f98000", -0.0),
            ("f93c00", 1.0),
            ("f93e00", 1.5),
            ("f97bff", 65504.0),
            ("fa47c35000", 100000.0),
            ("fa7f7fffff", f64::from(f32::MAX)),
            ("f90001", 2f64.powi(-24)),
            ("f90400", 0.000_061_035_156_25),
            ("f9c400", -4.0),
            ("f97c00", f64::INFINITY),
            ("f9fc00", f64::NEG_INFINITY),
            ("fa7f800000", f64::INFINITY),
            ("fb7ff0000000000000", f64::INFINITY),
        ];
        for (bytes, x) in floats {
            match decode(&hex(bytes)) {
                Ok(Cbor::Float(y)) => {
                    assert_eq!(y, x, "{bytes}");
                    assert_eq!(y.is_sign_negative(), x.is_sign_negative(), "{bytes}");
                }
                other => panic!("{bytes}: {other:?}"),
            }
        }
        for nan in ["f97e00", "fa7fc00000", "fb7ff8000000000000"] {
            assert!(matches!(decode(&hex(nan)), Ok(Cbor::Float(x)) if x.is_nan()));
        }
        // Doubles written by the encoder read back bit for bit.
        for x in [0.1, -0.0, 1.0e-310, f64::MAX, 1_700_000_000.123] {
            assert_eq!(decode(&encode(&Cbor::Float(x))), Ok(Cbor::Float(x)));
        }
    }

    #[test]
    fn rfc_8949_indefinite_lengths_decode() {
        let examples = [
            ("5f42010243030405ff", Cbor::Bytes(vec![1, 2, 3, 4, 5])),
            ("7f657374726561646d696e67ff", t("streaming")),
            ("9fff", Cbor::Array(vec![])),
            (
                "9f018202039f0405ffff",
                Cbor::Array(vec![
                    int(1),
                    Cbor::Array(vec![int(2), int(3)]),
                    Cbor::Array(vec![int(4), int(5)]),
                ]),
            ),
            (
                "83018202039f0405ff",
                Cbor::Array(vec![
                    int(1),
                    Cbor::Array(vec![int(2), int(3)]),
                    Cbor::Array(vec![int(4), int(5)]),
                ]),
            ),
            (
                "bf61610161629f0203ffff",
                map(vec![
                    (t("a"), int(1)),
                    (t("b"), Cbor::Array(vec![int(2), int(3)])),
                ]),
            ),
            (
                "826161bf61626163ff",
                Cbor::Array(vec![t("a"), map(vec![(t("b"), t("c"))])]),
            ),
            (
                "bf6346756ef563416d7421ff",
                map(vec![(t("Fun"), Cbor::Bool(true)), (t("Amt"), int(-2))]),
            ),
            ("5fff", Cbor::Bytes(vec![])),
        ];
        for (bytes, item) in examples {
            assert_eq!(decode(&hex(bytes)), Ok(item), "{bytes}");
        }
    }

    #[test]
    fn every_truncation_of_a_valid_item_is_refused() {
        let whole = hex(
            "a3644461746144000102ff6954696d657374616d70c11b0000018bcfe56800\
                         65576f7264739f6161bf616201ff5f4101ff7f6161ffff",
        );
        assert!(decode(&whole).is_ok());
        for cut in 0..whole.len() {
            match decode(&whole[..cut]) {
                Err(CborError::Truncated { .. }) => {}
                other => panic!("{cut} of {} bytes: {other:?}", whole.len()),
            }
        }
    }

    #[test]
    fn malformed_input_gets_a_clear_error() {
        let malformed = |bytes: &str| match decode(&hex(bytes)) {
            Err(CborError::Malformed { what, .. }) => what,
            other => panic!("{bytes}: expected Malformed, got {other:?}"),
        };
        assert_eq!(malformed("1c"), "reserved additional information");
        assert_eq!(malformed("fc"), "reserved additional information");
        assert_eq!(malformed("ff"), "a break outside an indefinite-length item");
        assert_eq!(malformed("1f"), "indefinite length on an integer or tag");
        assert_eq!(malformed("df00"), "indefinite length on an integer or tag");
        assert!(malformed("5f01ff").contains("chunk"));
        assert!(malformed("7f4161ff").contains("chunk"));
        assert!(malformed("5f5f4101ffff").contains("chunk"));
        assert_eq!(malformed("62c328"), "a text string that is not UTF-8");
        assert_eq!(malformed("7f61c3ff"), "a text chunk that is not UTF-8");
        assert_eq!(malformed("f0"), "an unassigned simple value");
        assert_eq!(malformed("f818"), "a two-byte simple value below 32");
        assert_eq!(
            malformed("bf6161ff"),
            "a map ends after a key, before its value"
        );
        assert_eq!(
            malformed("81ff"),
            "a break outside an indefinite-length item"
        );
        assert_eq!(decode(&hex("0000")), Err(CborError::TrailingBytes(1)));
        assert_eq!(decode(&[]), Err(CborError::Truncated { at: 0 }));
    }

    #[test]
    fn declared_lengths_beyond_the_input_are_refused_before_allocating() {
        for bytes in [
            "5bffffffffffffffff",
            "7b7fffffffffffffff00",
            "9bffffffffffffffff",
            "bbffffffffffffffff",
            "9a000f4240",
            "a2010203",
        ] {
            assert!(
                matches!(decode(&hex(bytes)), Err(CborError::Truncated { .. })),
                "{bytes}"
            );
        }
    }

    #[test]
    fn depth_and_item_limits_hold() {
        let nested = |n: usize, open: u8| {
            let mut b = vec![open; n];
            b.push(0);
            b
        };
        let limits = Limits::default();
        assert!(decode(&nested(limits.max_depth, 0x81)).is_ok());
        assert_eq!(
            decode(&nested(limits.max_depth + 1, 0x81)),
            Err(CborError::TooDeep(limits.max_depth))
        );
        // Tags and indefinite arrays count too; a deep input fails without deep recursion.
        assert_eq!(
            decode(&nested(100_000, 0xc1)),
            Err(CborError::TooDeep(limits.max_depth))
        );
        assert_eq!(
            decode(&nested(100_000, 0x9f)),
            Err(CborError::TooDeep(limits.max_depth))
        );
        let small = Limits {
            max_depth: 4,
            max_items: 3,
        };
        assert!(decode_with(&hex("820102"), small).is_ok());
        assert_eq!(
            decode_with(&hex("83010203"), small),
            Err(CborError::TooManyItems(3))
        );
        assert_eq!(
            decode_with(&hex("5f410141014101ff"), small),
            Err(CborError::TooManyItems(3))
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A deterministic stream of pseudo-random inputs, and mutations of a valid one.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = encode(&map(vec![
            (t("Data"), Cbor::Bytes(vec![0, 1, 2])),
            (t("Records"), Cbor::Array(vec![int(-5), Cbor::Float(0.5)])),
            (t("T"), Cbor::Tag(1, Box::new(int(1_700_000_000_000)))),
        ]));
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let random: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = decode(&random);
            let mut mutated = valid.clone();
            let i = (next() as usize) % mutated.len();
            mutated[i] = next() as u8;
            let _ = decode(&mutated);
        }
    }

    #[test]
    fn what_is_encoded_decodes_to_itself() {
        let item = map(vec![
            (t("Data"), Cbor::Bytes((0..=255).collect())),
            (t("Big"), int(u64::MAX as i128)),
            (t("Small"), int(-(u64::MAX as i128) - 1)),
            (t("Nested"), Cbor::Array(vec![map(vec![]), Cbor::Null])),
            (t("Long"), t(&"x".repeat(70_000))),
        ]);
        assert_eq!(decode(&encode(&item)), Ok(item.clone()));
        assert_eq!(item.get("Big"), Some(&int(u64::MAX as i128)));
        assert_eq!(item.get("Missing"), None);
    }
}
