//! Enhanced fan-out consumers: their names, records and ARNs. No state, no I/O; the
//! records live in the stream catalog (`catalog_state`), next to their stream's record.
//!
//! A consumer's ARN is `<stream ARN>/consumer/<name>:<creation time in epoch seconds>`,
//! as Kinesis writes it, so an ARN names one registration: a consumer deregistered and
//! registered again under the same name (a second later or more) has a new ARN, and the
//! old ARN finds nothing.

use serde::{Deserialize, Serialize};

use super::model::{StreamError, StreamName};

/// Consumers a stream may have registered at once (Kinesis's quota).
pub const MAX_CONSUMERS_PER_STREAM: usize = 20;
/// Largest page of ListStreamConsumers.
pub const MAX_LIST_CONSUMERS: u32 = 10_000;
const MAX_CONSUMER_NAME_CHARS: usize = 128;

/// A consumer's name: 1–128 of `[A-Za-z0-9_.-]`, unique within its stream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConsumerName(String);

impl ConsumerName {
    pub fn parse(name: &str) -> Result<ConsumerName, StreamError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_CONSUMER_NAME_CHARS
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(ConsumerName(name.to_string()))
        } else {
            Err(StreamError::constraint(
                "consumerName",
                name,
                "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ConsumerName {
    type Error = StreamError;
    fn try_from(s: String) -> Result<Self, StreamError> {
        ConsumerName::parse(&s)
    }
}

impl From<ConsumerName> for String {
    fn from(n: ConsumerName) -> String {
        n.0
    }
}

impl std::fmt::Display for ConsumerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registered consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerRecord {
    pub stream: StreamName,
    pub name: ConsumerName,
    pub created_ms: u64,
}

impl ConsumerRecord {
    pub fn created_seconds(&self) -> u64 {
        self.created_ms / 1000
    }

    pub fn arn(&self) -> String {
        format!(
            "{}/consumer/{}:{}",
            self.stream.arn(),
            self.name,
            self.created_seconds()
        )
    }
}

/// What a ConsumerARN names: a stream, a consumer name and its creation second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerArn {
    pub stream: StreamName,
    pub name: ConsumerName,
    pub created_seconds: u64,
}

impl ConsumerArn {
    /// Parse `arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/<name>:<secs>`.
    /// A malformed ARN is a ValidationException (the API model's pattern); another
    /// account's or region's consumer is `ResourceNotFound` by the caller, since the
    /// stream name alone is kept.
    pub fn parse(arn: &str) -> Result<ConsumerArn, StreamError> {
        let bad = || {
            StreamError::constraint(
                "consumerARN",
                arn,
                "Member must satisfy regular expression pattern: ^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+",
            )
        };
        let (stream_arn, consumer) = arn.split_once("/consumer/").ok_or_else(bad)?;
        let stream = StreamName::from_arn(stream_arn).ok_or_else(bad)?;
        if stream.arn() != stream_arn {
            // Another region's stream of the same name is not this one.
            return Err(StreamError::ResourceNotFound(format!(
                "Consumer {arn} under account {} not found.",
                super::model::ACCOUNT_ID
            )));
        }
        let (name, seconds) = consumer.rsplit_once(':').ok_or_else(bad)?;
        let name = ConsumerName::parse(name).map_err(|_| bad())?;
        if seconds.is_empty() || seconds.len() > 19 || !seconds.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let created_seconds = seconds.parse::<u64>().map_err(|_| bad())?;
        Ok(ConsumerArn {
            stream,
            name,
            created_seconds,
        })
    }

    /// Whether `record` is the registration this ARN names.
    pub fn names(&self, record: &ConsumerRecord) -> bool {
        record.stream == self.stream
            && record.name == self.name
            && record.created_seconds() == self.created_seconds
    }
}

/// The error Kinesis gives for a consumer that is not registered.
pub fn consumer_not_found(stream: &StreamName, name: &str) -> StreamError {
    StreamError::ResourceNotFound(format!(
        "Consumer {name} under stream {stream} under account {} not found.",
        super::model::ACCOUNT_ID
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_round_trip_and_name_one_registration() {
        let record = ConsumerRecord {
            stream: StreamName::parse("orders").unwrap(),
            name: ConsumerName::parse("app-1").unwrap(),
            created_ms: 1_700_000_000_123,
        };
        let arn = record.arn();
        assert_eq!(
            arn,
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/app-1:1700000000"
        );
        let parsed = ConsumerArn::parse(&arn).unwrap();
        assert!(parsed.names(&record));
        let later = ConsumerRecord {
            created_ms: 1_700_000_001_000,
            ..record.clone()
        };
        assert!(!parsed.names(&later));
    }

    #[test]
    fn bad_names_and_arns_are_refused_as_kinesis_refuses_them() {
        assert!(ConsumerName::parse("a.b_c-9").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(129)] {
            assert_eq!(
                ConsumerName::parse(bad).unwrap_err().code(),
                "ValidationException"
            );
        }
        let code = |arn: &str| ConsumerArn::parse(arn).unwrap_err().code();
        let stream = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
        assert_eq!(code(stream), "ValidationException");
        assert_eq!(code(&format!("{stream}/consumer/c")), "ValidationException");
        assert_eq!(
            code(&format!("{stream}/consumer/c:x1")),
            "ValidationException"
        );
        assert_eq!(
            code(&format!("{stream}/consumer/c d:1")),
            "ValidationException"
        );
        assert_eq!(
            code("arn:aws:kinesis:eu-west-1:000000000000:stream/s/consumer/c:1"),
            "ResourceNotFoundException"
        );
        assert!(ConsumerArn::parse(&format!("{stream}/consumer/c:1")).is_ok());
    }
}
