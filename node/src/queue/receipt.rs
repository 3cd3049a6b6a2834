//! Receipt handles: the opaque token a receive hands out and a delete or visibility change
//! gives back. It names the queue, the message (its sequence number) and the receive (a
//! nonce chosen for that receive), with a CRC so a damaged or invented handle is refused
//! as `ReceiptHandleIsInvalid` instead of touching some other message.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::errors::QueueError;
use super::model::QueueName;
use super::state::Receipt;

const VERSION: u8 = 1;

pub fn encode(queue: &QueueName, receipt: Receipt) -> String {
    let mut raw = Vec::with_capacity(21 + queue.as_str().len());
    raw.push(VERSION);
    raw.extend_from_slice(&receipt.seq.to_be_bytes());
    raw.extend_from_slice(&receipt.nonce.to_be_bytes());
    raw.extend_from_slice(queue.as_str().as_bytes());
    let crc = crc32fast::hash(&raw);
    raw.extend_from_slice(&crc.to_be_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

/// The receipt a handle carries, if it is a valid handle of `queue`.
pub fn decode(queue: &QueueName, handle: &str) -> Result<Receipt, QueueError> {
    let invalid = || QueueError::ReceiptHandleIsInvalid(handle.chars().take(200).collect());
    let raw = URL_SAFE_NO_PAD
        .decode(handle.trim())
        .map_err(|_| invalid())?;
    // Version, seq, nonce, a name of at least one byte, CRC.
    if raw.len() < 1 + 8 + 8 + 1 + 4 || raw[0] != VERSION {
        return Err(invalid());
    }
    let (body, crc) = raw.split_at(raw.len() - 4);
    if crc32fast::hash(body).to_be_bytes() != crc {
        return Err(invalid());
    }
    if &body[17..] != queue.as_str().as_bytes() {
        return Err(invalid());
    }
    let seq = u64::from_be_bytes(body[1..9].try_into().map_err(|_| invalid())?);
    let nonce = u64::from_be_bytes(body[9..17].try_into().map_err(|_| invalid())?);
    Ok(Receipt { seq, nonce })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_refuse_tampering() {
        let short = QueueName::parse("q").unwrap();
        let r = Receipt { seq: 1, nonce: 2 };
        assert_eq!(decode(&short, &encode(&short, r)), Ok(r));
        let q = QueueName::parse("orders").unwrap();
        let r = Receipt {
            seq: 42,
            nonce: 0xdead_beef,
        };
        let h = encode(&q, r);
        assert_eq!(decode(&q, &h), Ok(r));
        let other = QueueName::parse("other").unwrap();
        assert!(decode(&other, &h).is_err());
        let mut bad = h.clone().into_bytes();
        bad[5] = if bad[5] == b'A' { b'B' } else { b'A' };
        assert!(decode(&q, &String::from_utf8(bad).unwrap()).is_err());
        assert!(decode(&q, "not a handle").is_err());
        assert!(decode(&q, "").is_err());
    }
}
