//! The MD5 digests SQS returns with every send and receive. SDKs check them (boto3 refuses
//! a message whose digest does not match), so they follow AWS's definitions exactly:
//! MD5OfMessageBody is the MD5 of the body's UTF-8 bytes; MD5OfMessageAttributes hashes,
//! for each attribute in name order, the name, the data type, a transport byte (1 for
//! String and Number, 2 for Binary) and the value, each length-prefixed (4 bytes,
//! big-endian).

use md5::{Digest, Md5};

use crate::queue::model::MessageAttributes;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn md5_of_body(body: &str) -> String {
    hex(&Md5::digest(body.as_bytes()))
}

fn put(h: &mut Md5, bytes: &[u8]) {
    h.update((bytes.len() as u32).to_be_bytes());
    h.update(bytes);
}

/// None when there are no attributes (SQS then omits the field).
pub fn md5_of_attributes<'a>(
    attributes: impl IntoIterator<Item = (&'a String, &'a crate::queue::model::AttributeValue)>,
) -> Option<String> {
    let mut sorted: Vec<_> = attributes.into_iter().collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Md5::new();
    for (name, value) in sorted {
        put(&mut h, name.as_bytes());
        put(&mut h, value.data_type.as_bytes());
        if value.is_binary() {
            h.update([2u8]);
            put(&mut h, value.binary_value.as_deref().unwrap_or_default());
        } else {
            h.update([1u8]);
            put(
                &mut h,
                value.string_value.as_deref().unwrap_or_default().as_bytes(),
            );
        }
    }
    Some(hex(&h.finalize()))
}

pub fn md5_of_all(attributes: &MessageAttributes) -> Option<String> {
    md5_of_attributes(attributes.iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::model::AttributeValue;

    #[test]
    fn digests_match_the_values_aws_documents() {
        // MD5 of "hello" as SQS returns for that body.
        assert_eq!(md5_of_body("hello"), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(md5_of_all(&MessageAttributes::new()), None);
        // Computed by hand from AWS's definition for one String attribute a=b:
        // 00000001 'a' 00000006 'String' 01 00000001 'b'.
        let mut attrs = MessageAttributes::new();
        attrs.insert(
            "a".into(),
            AttributeValue {
                data_type: "String".into(),
                string_value: Some("b".into()),
                binary_value: None,
            },
        );
        let mut raw = Vec::new();
        raw.extend_from_slice(&[0, 0, 0, 1, b'a', 0, 0, 0, 6]);
        raw.extend_from_slice(b"String");
        raw.extend_from_slice(&[1, 0, 0, 0, 1, b'b']);
        assert_eq!(md5_of_all(&attrs).unwrap(), hex(&Md5::digest(&raw)));
    }
}
