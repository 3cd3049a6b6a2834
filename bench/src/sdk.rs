//! What the AWS-SDK scenarios (`s3`, `sqs`, `kinesis`) share: the credentials they sign with, and
//! how an SDK error becomes the bounded one-line text kept in a result line.
//!
//! Both scenarios configure their SDK clients the same way (plain HTTP, SigV4, no SDK
//! retries so that a failure is counted instead of hidden behind a second attempt); each
//! builds its own client type from these.

// The same type in every SDK crate (it is aws-smithy-types'), re-exported by each.
use aws_sdk_s3::error::DisplayErrorContext;

/// Longest error text kept in a result line.
pub const ERROR_SAMPLE_CHARS: usize = 400;

/// Who the benchmark is to the cluster.
#[derive(Debug, Clone)]
pub struct AwsCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

/// An SDK error with its causes, bounded in length.
pub fn error_text(error: &(impl std::error::Error + 'static)) -> String {
    let mut text = format!("{}", DisplayErrorContext(error));
    if text.len() > ERROR_SAMPLE_CHARS {
        let mut end = ERROR_SAMPLE_CHARS;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut() {
        let long = std::io::Error::other("x".repeat(1000));
        let text = error_text(&long);
        assert!(text.chars().count() <= ERROR_SAMPLE_CHARS + 1);
        assert!(text.ends_with('…'));
        assert!(error_text(&std::io::Error::other("short")).starts_with("short"));
        let multibyte = std::io::Error::other("é".repeat(1000));
        assert!(error_text(&multibyte).ends_with('…'));
    }
}
