//! Client configuration: which nodes to talk to and how long to wait for them.
//!
//! Endpoint lists come from users (flags, environment), so parsing is strict about
//! what it accepts and says what was wrong; it never panics.

use std::time::Duration;

use crate::error::Error;

/// Node 1 of the local dev cluster (`stratusd dev`).
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7000";

/// How a [`Client`](crate::Client) connects and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// gRPC endpoints (`http://host:port`), tried in order, moving on when one fails.
    /// [`parse_endpoint_list`] builds this from user input.
    pub endpoints: Vec<String>,
    /// Time allowed to open a TCP connection to one endpoint.
    pub connect_timeout: Duration,
    /// Total time for one call, including every retry.
    pub call_timeout: Duration,
    /// Time one read attempt may take before the client asks the next endpoint. Writes
    /// have no per-attempt limit: giving up on one would leave its outcome unknown.
    pub read_attempt_timeout: Duration,
    /// First pause between retries; doubles on each retry up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest pause between retries.
    pub backoff_max: Duration,
}

impl ClientConfig {
    /// Defaults for the given endpoints: 1 s connect timeout, 10 s per call.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            connect_timeout: Duration::from_secs(1),
            call_timeout: Duration::from_secs(10),
            read_attempt_timeout: Duration::from_secs(3),
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(500),
        }
    }

    /// Same configuration with a different per-call deadline.
    pub fn with_call_timeout(mut self, call_timeout: Duration) -> Self {
        self.call_timeout = call_timeout;
        self
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self::new(vec![DEFAULT_ENDPOINT.to_string()])
    }
}

/// Parses a comma-separated endpoint list such as
/// `http://10.0.0.1:7000,10.0.0.2:7000` (plain HTTP/2: the client has no TLS yet). Blank items are skipped, duplicates dropped,
/// and an item without a scheme gets `http://`. Fails on an empty list or an item that
/// is not a valid URI.
pub fn parse_endpoint_list(list: &str) -> Result<Vec<String>, Error> {
    let mut endpoints: Vec<String> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let endpoint = normalize_endpoint(item)?;
        if !endpoints.contains(&endpoint) {
            endpoints.push(endpoint);
        }
    }
    if endpoints.is_empty() {
        return Err(Error::InvalidEndpoint {
            endpoint: list.to_string(),
            reason: "no endpoint given".to_string(),
        });
    }
    Ok(endpoints)
}

/// One endpoint: adds `http://` when no scheme is given and checks that the result is a
/// URI with a host.
pub(crate) fn normalize_endpoint(item: &str) -> Result<String, Error> {
    let invalid = |reason: &str| Error::InvalidEndpoint {
        endpoint: item.to_string(),
        reason: reason.to_string(),
    };
    let endpoint = if item.contains("://") {
        item.to_string()
    } else {
        format!("http://{item}")
    };
    let uri: tonic::codegen::http::Uri = endpoint
        .parse()
        .map_err(|e: tonic::codegen::http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(invalid("TLS is not supported yet; use http://")),
        _ => return Err(invalid("scheme must be http")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("missing host"));
    }
    // `Uri` accepts any digits as a port; a typo like 70000 should fail here, not later.
    if let Some((_, port)) = uri.authority().and_then(|a| a.as_str().rsplit_once(':')) {
        if !port.contains(']') && !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
            return Err(invalid("port must be a number from 1 to 65535"));
        }
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_single_endpoint() {
        assert_eq!(
            parse_endpoint_list("http://127.0.0.1:7000").unwrap(),
            vec!["http://127.0.0.1:7000"]
        );
    }

    #[test]
    fn splits_trims_adds_scheme_and_dedups() {
        assert_eq!(
            parse_endpoint_list(" http://a:7000, b:7001 ,,http://a:7000,http://c:7002").unwrap(),
            vec!["http://a:7000", "http://b:7001", "http://c:7002"]
        );
    }

    #[test]
    fn accepts_ipv6_and_hosts_without_port() {
        assert_eq!(
            parse_endpoint_list("[::1]:7000,http://[::1],node-1").unwrap(),
            vec!["http://[::1]:7000", "http://[::1]", "http://node-1"]
        );
    }

    #[test]
    fn rejects_empty_lists() {
        for list in ["", " ", ",", " , ,"] {
            assert!(
                matches!(
                    parse_endpoint_list(list),
                    Err(Error::InvalidEndpoint { .. })
                ),
                "{list:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_items_with_a_reason() {
        for list in [
            "ftp://a:7000",
            "https://a:7000",
            "http://",
            "http://a b:7000",
            "a:70000",
            "a:0",
            "a:",
            "http://[::1]:x",
        ] {
            let err = parse_endpoint_list(list).unwrap_err();
            assert!(
                matches!(err, Error::InvalidEndpoint { .. }),
                "{list:?}: {err}"
            );
        }
    }

    #[test]
    fn default_config_points_at_the_dev_cluster() {
        let config = ClientConfig::default();
        assert_eq!(config.endpoints, vec![DEFAULT_ENDPOINT]);
        assert_eq!(config.call_timeout, Duration::from_secs(10));
        assert_eq!(config.connect_timeout, Duration::from_secs(1));
    }
}
