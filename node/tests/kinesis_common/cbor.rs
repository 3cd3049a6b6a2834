//! The CBOR tests' own small CBOR (RFC 8949), written apart from the server's
//! (`stratus_node::api::cbor`) so that a test does not check the server's codec with
//! itself: definite-length items only (what the AWS SDKs for Java write, and what the
//! server answers with), encoded in shortest form, decoded strictly (panicking on
//! anything else, with the offset).

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Uint(u64),
    /// Major type 1: the value is −1 − n.
    Nint(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Item>),
    Map(Vec<(Item, Item)>),
    Tag(u64, Box<Item>),
    Float(f64),
    Bool(bool),
    Null,
}

pub fn text(s: &str) -> Item {
    Item::Text(s.to_string())
}

pub fn bytes(b: &[u8]) -> Item {
    Item::Bytes(b.to_vec())
}

/// A map with text keys, in the order given.
pub fn map(pairs: Vec<(&str, Item)>) -> Item {
    Item::Map(pairs.into_iter().map(|(k, v)| (text(k), v)).collect())
}

/// CBOR tag 1 around epoch milliseconds: a timestamp as AWS's CBOR carries it.
pub fn epoch_millis(ms: u64) -> Item {
    Item::Tag(1, Box::new(Item::Uint(ms)))
}

impl Item {
    /// A map's member by text key (panics if this is not a map).
    pub fn get(&self, key: &str) -> Option<&Item> {
        match self {
            Item::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| *k == Item::Text(key.to_string()))
                .map(|(_, v)| v),
            other => panic!("looking up {key} in a non-map {other:?}"),
        }
    }

    /// The member `key`, which must be there.
    pub fn at(&self, key: &str) -> &Item {
        self.get(key)
            .unwrap_or_else(|| panic!("no member {key} in {self:?}"))
    }

    pub fn as_text(&self) -> &str {
        match self {
            Item::Text(s) => s,
            other => panic!("expected a text string, got {other:?}"),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Item::Bytes(b) => b,
            other => panic!("expected a byte string (major type 2), got {other:?}"),
        }
    }

    pub fn as_uint(&self) -> u64 {
        match self {
            Item::Uint(n) => *n,
            other => panic!("expected an unsigned integer, got {other:?}"),
        }
    }

    pub fn as_array(&self) -> &[Item] {
        match self {
            Item::Array(items) => items,
            other => panic!("expected an array, got {other:?}"),
        }
    }

    /// Tag 1 around an unsigned integer: AWS CBOR's epoch milliseconds.
    pub fn as_epoch_millis(&self) -> u64 {
        match self {
            Item::Tag(1, inner) => match **inner {
                Item::Uint(ms) => ms,
                ref other => panic!("tag 1 around {other:?}, not integer milliseconds"),
            },
            other => panic!("expected tag 1 (epoch time), got {other:?}"),
        }
    }

    /// The keys of a map, sorted.
    pub fn keys(&self) -> BTreeMap<String, ()> {
        match self {
            Item::Map(pairs) => pairs
                .iter()
                .map(|(k, _)| (k.as_text().to_string(), ()))
                .collect(),
            other => panic!("expected a map, got {other:?}"),
        }
    }
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.extend([m | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend((n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend((n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend(n.to_be_bytes());
    }
}

pub fn encode(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, item);
    out
}

fn write(out: &mut Vec<u8>, item: &Item) {
    match item {
        Item::Uint(n) => head(out, 0, *n),
        Item::Nint(n) => head(out, 1, *n),
        Item::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend(b);
        }
        Item::Text(s) => {
            head(out, 3, s.len() as u64);
            out.extend(s.as_bytes());
        }
        Item::Array(items) => {
            head(out, 4, items.len() as u64);
            items.iter().for_each(|i| write(out, i));
        }
        Item::Map(pairs) => {
            head(out, 5, pairs.len() as u64);
            for (k, v) in pairs {
                write(out, k);
                write(out, v);
            }
        }
        Item::Tag(t, inner) => {
            head(out, 6, *t);
            write(out, inner);
        }
        Item::Float(x) => {
            out.push(0xfb);
            out.extend(x.to_bits().to_be_bytes());
        }
        Item::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Item::Null => out.push(0xf6),
    }
}

/// Decode exactly one definite-length item.
pub fn decode(bytes: &[u8]) -> Item {
    let mut at = 0;
    let item = read(bytes, &mut at);
    assert_eq!(at, bytes.len(), "bytes after the CBOR item: {bytes:02x?}");
    item
}

fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize) -> &'a [u8] {
    let end = at
        .checked_add(n)
        .filter(|&e| e <= bytes.len())
        .unwrap_or_else(|| panic!("CBOR cut short at {at} (needs {n} more bytes)"));
    let out = &bytes[*at..end];
    *at = end;
    out
}

fn read(bytes: &[u8], at: &mut usize) -> Item {
    let start = *at;
    let initial = take(bytes, at, 1)[0];
    let (major, info) = (initial >> 5, initial & 31);
    if major == 7 {
        return match info {
            20 => Item::Bool(false),
            21 => Item::Bool(true),
            22 => Item::Null,
            27 => {
                let b = take(bytes, at, 8);
                Item::Float(f64::from_be_bytes(b.try_into().unwrap()))
            }
            26 => {
                let b = take(bytes, at, 4);
                Item::Float(f64::from(f32::from_be_bytes(b.try_into().unwrap())))
            }
            _ => panic!("unexpected simple/float byte {initial:#04x} at {start}"),
        };
    }
    let n = match info {
        0..=23 => u64::from(info),
        24..=27 => take(bytes, at, 1 << (info - 24))
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        _ => panic!("indefinite or reserved length {initial:#04x} at {start}"),
    };
    match major {
        0 => Item::Uint(n),
        1 => Item::Nint(n),
        2 => Item::Bytes(take(bytes, at, n as usize).to_vec()),
        3 => Item::Text(
            String::from_utf8(take(bytes, at, n as usize).to_vec())
                .unwrap_or_else(|_| panic!("text at {start} is not UTF-8")),
        ),
        4 => Item::Array((0..n).map(|_| read(bytes, at)).collect()),
        5 => Item::Map(
            (0..n)
                .map(|_| {
                    let k = read(bytes, at);
                    (k, read(bytes, at))
                })
                .collect(),
        ),
        6 => Item::Tag(n, Box::new(read(bytes, at))),
        _ => unreachable!("major type {major}"),
    }
}

#[test]
fn the_test_codec_matches_rfc_8949_examples() {
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let examples = [
        (Item::Uint(1_000_000), "1a000f4240"),
        (Item::Nint(999), "3903e7"),
        (bytes(&[1, 2, 3, 4]), "4401020304"),
        (text("\u{6c34}"), "63e6b0b4"),
        (
            Item::Tag(1, Box::new(Item::Uint(1_363_896_240))),
            "c11a514b67b0",
        ),
        (
            map(vec![
                ("a", Item::Uint(1)),
                ("b", Item::Array(vec![Item::Uint(2), Item::Uint(3)])),
            ]),
            "a26161016162820203",
        ),
        (Item::Float(1.1), "fb3ff199999999999a"),
    ];
    for (item, h) in examples {
        assert_eq!(encode(&item), hex(h), "{item:?}");
        assert_eq!(decode(&hex(h)), item, "{h}");
    }
}
