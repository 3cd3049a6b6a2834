//! SigV4 verification of `Authorization` headers for the edge's JSON protocols (SQS,
//! Kinesis); S3's own (presigned URLs, streaming bodies) is done by s3s.
//!
//! The canonical request follows AWS's rules for services other than S3: each path
//! segment is URI-encoded again, query parameters are sorted by encoded name and value,
//! signed header values are trimmed with inner runs of spaces folded, and the payload
//! hash is the SHA-256 of the body the server received. The request time must be within
//! 15 minutes of the server's clock.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::s3::auth::AccessKeys;

/// How far a request's X-Amz-Date may be from the server's clock.
const MAX_SKEW_SECONDS: i64 = 15 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("Request is missing Authentication Token")]
    Missing,
    #[error("Authorization header is malformed: {0}")]
    Malformed(String),
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")]
    Mismatch,
    #[error("Signature expired: {0} is now earlier or later than the server's time by more than 15 minutes.")]
    Skewed(String),
}

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

/// What the verifier needs of a request.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as received (still percent-encoded).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Header names lower-case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// AWS's URI encoding: everything but unreserved characters as %XX (upper-case hex).
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    path.split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (uri_encode(&k), uri_encode(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn fold_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, SigError> {
    let malformed = |why: &str| SigError::Malformed(why.to_string());
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or_else(|| malformed("only AWS4-HMAC-SHA256 is supported"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or_else(|| malformed("missing Credential"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope[..] else {
        return Err(malformed(
            "Credential must be <key>/<date>/<region>/<service>/aws4_request",
        ));
    };
    let signed_headers: Vec<&str> = signed
        .ok_or_else(|| malformed("missing SignedHeaders"))?
        .split(';')
        .collect();
    Ok(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers,
        signature: signature.ok_or_else(|| malformed("missing Signature"))?,
    })
}

/// Seconds since the epoch of an ISO 8601 basic time (`20261123T101500Z`).
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let month = time::Month::try_from(num(4..6)? as u8).ok()?;
    let date = time::Date::from_calendar_date(num(0..4)? as i32, month, num(6..8)? as u8).ok()?;
    let clock =
        time::Time::from_hms(num(9..11)? as u8, num(11..13)? as u8, num(13..15)? as u8).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Verify `request`'s SigV4 signature against the secret `keys` hold for its access key.
pub fn verify(
    request: &SignedRequest<'_>,
    keys: &dyn AccessKeys,
    now_unix_seconds: i64,
) -> Result<Caller, SigError> {
    let header = request
        .header_values("authorization")
        .first()
        .copied()
        .ok_or(SigError::Missing)?;
    let auth = parse_authorization(header)?;
    let amz_date = request
        .header_values("x-amz-date")
        .first()
        .copied()
        .ok_or_else(|| SigError::Malformed("missing X-Amz-Date".into()))?;
    let at = parse_amz_date(amz_date)
        .ok_or_else(|| SigError::Malformed(format!("bad X-Amz-Date {amz_date}")))?;
    if !amz_date.starts_with(auth.date) {
        return Err(SigError::Malformed(
            "the credential date is not the request's date".into(),
        ));
    }
    if (now_unix_seconds - at).abs() > MAX_SKEW_SECONDS {
        return Err(SigError::Skewed(amz_date.to_string()));
    }
    if !auth.signed_headers.contains(&"host") {
        return Err(SigError::Malformed("the Host header must be signed".into()));
    }
    let secret = keys
        .secret_of(auth.access_key)
        .ok_or(SigError::UnknownKey)?;

    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<String> = request
            .header_values(name)
            .iter()
            .map(|v| fold_spaces(v))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_uri(request.path),
        canonical_query(request.query),
        canonical_headers,
        auth.signed_headers.join(";"),
        hex(&Sha256::digest(request.body)),
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    let k_region = hmac(&k_date, auth.region.as_bytes());
    let k_service = hmac(&k_region, auth.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let expected = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
    // Compare without an early exit on the first differing byte.
    let provided = auth.signature.as_bytes();
    let same = expected.len() == provided.len()
        && expected
            .bytes()
            .zip(provided)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(SigError::Mismatch);
    }
    Ok(Caller {
        access_key: auth.access_key.to_string(),
        region: auth.region.to_string(),
        service: auth.service.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::s3::auth::RootKeys;

    /// AWS's published SigV4 test suite example ("get-vanilla"), which uses the example
    /// credentials AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY.
    #[test]
    fn the_aws_test_suite_vanilla_get_verifies() {
        let keys = RootKeys {
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        };
        let headers = vec![
            ("host".to_string(), "example.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
            (
                "authorization".to_string(),
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".to_string(),
            ),
        ];
        let request = SignedRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let at = parse_amz_date("20150830T123600Z").unwrap();
        let caller = verify(&request, &keys, at).unwrap();
        assert_eq!(caller.service, "service");
        // A different secret, a skewed clock, or no header at all.
        let wrong = RootKeys {
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "x".into(),
        };
        assert_eq!(verify(&request, &wrong, at), Err(SigError::Mismatch));
        assert!(matches!(
            verify(&request, &keys, at + 3600),
            Err(SigError::Skewed(_))
        ));
        let other = RootKeys {
            access_key: "OTHER".into(),
            secret_key: "x".into(),
        };
        assert_eq!(verify(&request, &other, at), Err(SigError::UnknownKey));
        let bare = SignedRequest {
            headers: &headers[..2],
            ..request
        };
        assert_eq!(verify(&bare, &keys, at), Err(SigError::Missing));
    }

    #[test]
    fn canonical_parts_follow_the_rules() {
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("k=a%20b"), "k=a%20b");
        assert_eq!(canonical_uri("/000000000000/q-1"), "/000000000000/q-1");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
        assert_eq!(fold_spaces("  a   b "), "a b");
    }
}
