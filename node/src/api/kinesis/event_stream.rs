//! The AWS event-stream framing (`application/vnd.amazon.eventstream`) that
//! SubscribeToShard answers with: a sequence of binary messages, each
//!
//! ```text
//! total length (u32 BE) | headers length (u32 BE) | prelude CRC32 (of the 8 bytes before)
//! headers               | payload                 | message CRC32 (of everything before)
//! ```
//!
//! and each header `name length (u8) | name | value type (u8) | value`, where Stratus only
//! writes strings (type 7: `length (u16 BE) | UTF-8 bytes`). CRCs are CRC-32 (IEEE), as
//! in the AWS SDKs' decoders. `decode` reads one message back and checks both CRCs; it is
//! what the unit tests and the raw-HTTP integration tests (`kinesis_http2`,
//! `kinesis_cbor`) use. Payloads are JSON or CBOR documents, as the request was
//! (`:content-type` says which).

/// The media type of an event stream.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";
const PRELUDE_BYTES: usize = 12;
const CRC_BYTES: usize = 4;
const STRING_TYPE: u8 = 7;
/// The largest message a decoder accepts (the SDKs' limit is 16 MiB).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// One message: string headers in order, and a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// An `event` message of `event_type` whose payload is a document of `content_type`
    /// (JSON, or CBOR when the request was CBOR).
    pub fn event(event_type: &str, content_type: &str, payload: Vec<u8>) -> Message {
        Message {
            headers: vec![
                (":message-type".into(), "event".into()),
                (":event-type".into(), event_type.into()),
                (":content-type".into(), content_type.into()),
            ],
            payload,
        }
    }

    /// An `exception` message naming the error code; its payload is `{"message": ...}` as
    /// a document of `content_type`.
    pub fn exception(code: &str, content_type: &str, payload: Vec<u8>) -> Message {
        Message {
            headers: vec![
                (":message-type".into(), "exception".into()),
                (":exception-type".into(), code.into()),
                (":content-type".into(), content_type.into()),
            ],
            payload,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The message's bytes on the wire. Header names over 255 bytes or values over
    /// 65,535 bytes are cut (Stratus writes only short, fixed ones).
    pub fn encode(&self) -> Vec<u8> {
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            let name = &name.as_bytes()[..name.len().min(u8::MAX as usize)];
            let value = &value.as_bytes()[..value.len().min(u16::MAX as usize)];
            headers.push(name.len() as u8);
            headers.extend_from_slice(name);
            headers.push(STRING_TYPE);
            headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
            headers.extend_from_slice(value);
        }
        let total = PRELUDE_BYTES + headers.len() + self.payload.len() + CRC_BYTES;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let prelude_crc = crc32fast::hash(&out);
        out.extend_from_slice(&prelude_crc.to_be_bytes());
        out.extend_from_slice(&headers);
        out.extend_from_slice(&self.payload);
        let message_crc = crc32fast::hash(&out);
        out.extend_from_slice(&message_crc.to_be_bytes());
        out
    }
}

/// Why bytes are not an event-stream message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the message is incomplete: {0} bytes more are needed")]
    Incomplete(usize),
    #[error("the prelude's CRC does not match")]
    PreludeCrc,
    #[error("the message's CRC does not match")]
    MessageCrc,
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Read one message from the front of `bytes`; returns it and how many bytes it took.
pub fn decode(bytes: &[u8]) -> Result<(Message, usize), DecodeError> {
    if bytes.len() < PRELUDE_BYTES {
        return Err(DecodeError::Incomplete(PRELUDE_BYTES - bytes.len()));
    }
    let total = be_u32(&bytes[0..4]) as usize;
    let headers_len = be_u32(&bytes[4..8]) as usize;
    if crc32fast::hash(&bytes[0..8]) != be_u32(&bytes[8..12]) {
        return Err(DecodeError::PreludeCrc);
    }
    if total > MAX_MESSAGE_BYTES || total < PRELUDE_BYTES + headers_len + CRC_BYTES {
        return Err(DecodeError::Malformed("the lengths do not fit"));
    }
    if bytes.len() < total {
        return Err(DecodeError::Incomplete(total - bytes.len()));
    }
    let body_end = total - CRC_BYTES;
    if crc32fast::hash(&bytes[..body_end]) != be_u32(&bytes[body_end..total]) {
        return Err(DecodeError::MessageCrc);
    }
    let mut rest = &bytes[PRELUDE_BYTES..PRELUDE_BYTES + headers_len];
    let mut headers = Vec::new();
    while let Some((&name_len, tail)) = rest.split_first() {
        let name_len = name_len as usize;
        if tail.len() < name_len + 3 {
            return Err(DecodeError::Malformed("a header is cut short"));
        }
        let name = String::from_utf8(tail[..name_len].to_vec())
            .map_err(|_| DecodeError::Malformed("a header name is not UTF-8"))?;
        if tail[name_len] != STRING_TYPE {
            return Err(DecodeError::Malformed("a header is not a string"));
        }
        let value_len = u16::from_be_bytes([tail[name_len + 1], tail[name_len + 2]]) as usize;
        let value_at = name_len + 3;
        let value = tail
            .get(value_at..value_at + value_len)
            .ok_or(DecodeError::Malformed("a header value is cut short"))?;
        let value = String::from_utf8(value.to_vec())
            .map_err(|_| DecodeError::Malformed("a header value is not UTF-8"))?;
        headers.push((name, value));
        rest = &tail[value_at + value_len..];
    }
    let payload = bytes[PRELUDE_BYTES + headers_len..body_end].to_vec();
    Ok((Message { headers, payload }, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_decode_to_what_was_encoded() {
        let m = Message::event(
            "SubscribeToShardEvent",
            "application/json",
            br#"{"Records":[]}"#.to_vec(),
        );
        let bytes = m.encode();
        let (back, used) = decode(&bytes).unwrap();
        assert_eq!((back.clone(), used), (m, bytes.len()));
        assert_eq!(back.header(":event-type"), Some("SubscribeToShardEvent"));
        // Two messages back to back are read one at a time.
        let e = Message::exception(
            "ResourceNotFoundException",
            "application/json",
            br#"{"message":"gone"}"#.to_vec(),
        );
        let mut both = bytes.clone();
        both.extend(e.encode());
        let (second, _) = decode(&both[used..]).unwrap();
        assert_eq!(
            second.header(":exception-type"),
            Some("ResourceNotFoundException")
        );
        assert_eq!(second.payload, br#"{"message":"gone"}"#);
        // An empty payload is fine (the initial response carries `{}` or nothing).
        let empty = Message::event("initial-response", "application/json", Vec::new());
        assert_eq!(decode(&empty.encode()).unwrap().0, empty);
    }

    #[test]
    fn the_framing_matches_the_specification() {
        let m = Message {
            headers: vec![("a".into(), "bc".into())],
            payload: b"xyz".to_vec(),
        };
        let b = m.encode();
        // Header: 1 (name length) + 1 + 1 (type) + 2 (value length) + 2 = 7 bytes.
        assert_eq!(b.len(), 12 + 7 + 3 + 4);
        assert_eq!(be_u32(&b[0..4]) as usize, b.len());
        assert_eq!(be_u32(&b[4..8]), 7);
        assert_eq!(be_u32(&b[8..12]), crc32fast::hash(&b[0..8]));
        assert_eq!(&b[12..19], &[1, b'a', 7, 0, 2, b'b', b'c']);
        assert_eq!(&b[19..22], b"xyz");
        assert_eq!(be_u32(&b[22..26]), crc32fast::hash(&b[..22]));
        // The CRC-32 used is IEEE's: the check value of "123456789".
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn damaged_or_short_messages_are_refused() {
        let b = Message::event("e", "application/json", b"{}".to_vec()).encode();
        assert_eq!(decode(&b[..5]), Err(DecodeError::Incomplete(7)));
        assert!(matches!(
            decode(&b[..b.len() - 1]),
            Err(DecodeError::Incomplete(1))
        ));
        let mut bad = b.clone();
        bad[1] ^= 1;
        assert_eq!(decode(&bad), Err(DecodeError::PreludeCrc));
        let mut bad = b.clone();
        let last_payload = b.len() - 5;
        bad[last_payload] ^= 1;
        assert_eq!(decode(&bad), Err(DecodeError::MessageCrc));
    }
}
