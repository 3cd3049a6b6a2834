//! The client: one lazily connected gRPC channel per endpoint and a call loop that applies
//! the retry policy of [`crate::retry`] within a per-call deadline.
//!
//! The client remembers which endpoint answered last and starts the next call there, so
//! a dead node costs one failed connect, not one per call. It does not track leaders:
//! every node forwards to the right leader.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stratus_proto::cluster::{cluster_client::ClusterClient, StatusRequest};
use stratus_proto::kv::{
    kv_client::KvClient, CasRequest, DeleteRequest, GetRequest, PutRequest, ScanRequest,
};
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use crate::config::{normalize_endpoint, ClientConfig};
use crate::error::Error;
use crate::model::{CasOutcome, ClusterStatus, KeyValue};
use crate::retry::{classify, with_jitter, Backoff, Disposition, OpKind};

/// A retry is not started with less than this left before the deadline: a write attempt
/// cut short by the deadline would turn a clean "not applied" into "outcome unknown".
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(50);

/// Entries asked for per scan request when following continuations.
const SCAN_PAGE_ENTRIES: u32 = 1000;

/// A typed client for a Stratus cluster. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    nodes: Vec<NodeChannel>,
    /// Index into `nodes` of the endpoint to try first.
    preferred: AtomicUsize,
    /// Whether the cluster has shown (by echoing a write's request id) that it applies an
    /// id at most once. Until it has, a write of unknown outcome is never resent: an older
    /// server would drop the id and could apply the write twice.
    ids_honored: AtomicBool,
}

#[derive(Debug)]
struct NodeChannel {
    endpoint: String,
    channel: Channel,
}

impl Client {
    /// A client over the given endpoints (`http://host:port`; `host:port` gets `http://`)
    /// with the default configuration. Connections open lazily on first use, so this
    /// succeeds even when no node is up yet; it must run inside a Tokio runtime.
    pub async fn connect<I, S>(endpoints: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let endpoints = endpoints
            .into_iter()
            .map(|e| e.as_ref().to_string())
            .collect();
        Self::with_config(ClientConfig::new(endpoints)).await
    }

    /// A client with an explicit configuration. Connections open lazily on first use.
    pub async fn with_config(config: ClientConfig) -> Result<Self, Error> {
        if config.endpoints.is_empty() {
            return Err(Error::InvalidEndpoint {
                endpoint: String::new(),
                reason: "no endpoint given".to_string(),
            });
        }
        if config.call_timeout.is_zero() || config.read_attempt_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "call and read attempt timeouts must be positive".to_string(),
            ));
        }
        let mut nodes = Vec::with_capacity(config.endpoints.len());
        for raw in &config.endpoints {
            let endpoint = normalize_endpoint(raw)?;
            let channel = Endpoint::from_shared(endpoint.clone())
                .map_err(|e| Error::InvalidEndpoint {
                    endpoint: raw.clone(),
                    reason: e.to_string(),
                })?
                .connect_timeout(config.connect_timeout)
                .tcp_nodelay(true)
                .connect_lazy();
            nodes.push(NodeChannel { endpoint, channel });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                nodes,
                preferred: AtomicUsize::new(0),
                ids_honored: AtomicBool::new(false),
            }),
        })
    }

    /// The configuration this client runs with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Stores `value` under `key`; returns the write's version.
    pub async fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<u64, Error> {
        let (key, value) = (key.as_ref(), value.as_ref());
        let id = new_request_id();
        self.call(OpKind::Write, |channel| {
            let request = PutRequest {
                key: key.to_vec(),
                value: value.to_vec(),
                request_id: id.clone(),
            };
            async move { Ok(KvClient::new(channel).put(request).await?.into_inner()) }
        })
        .await
        .map(|response| {
            self.note_echo(&id, &response.request_id);
            response.version
        })
    }

    /// The value and version stored under `key`, or `None` when it is absent.
    /// Linearizable: never older than an acknowledged write.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<(Vec<u8>, u64)>, Error> {
        let key = key.as_ref();
        let response = self
            .call(OpKind::Read, |channel| {
                let request = GetRequest { key: key.to_vec() };
                async move { Ok(KvClient::new(channel).get(request).await?.into_inner()) }
            })
            .await?;
        Ok(response.found.then_some((response.value, response.version)))
    }

    /// Removes `key`; returns whether it existed.
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool, Error> {
        let key = key.as_ref();
        let id = new_request_id();
        self.call(OpKind::Write, |channel| {
            let request = DeleteRequest {
                key: key.to_vec(),
                request_id: id.clone(),
            };
            async move { Ok(KvClient::new(channel).delete(request).await?.into_inner()) }
        })
        .await
        .map(|response| {
            self.note_echo(&id, &response.request_id);
            response.existed
        })
    }

    /// Atomically replaces the value of `key` when it currently equals `expected`
    /// (`None`: the key must be absent). `new: None` deletes the key on success.
    pub async fn compare_and_set(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome, Error> {
        let key = key.as_ref();
        let id = new_request_id();
        self.call(OpKind::Write, |channel| {
            let request = CasRequest {
                key: key.to_vec(),
                expected: expected.map(<[u8]>::to_vec),
                new_value: new.map(<[u8]>::to_vec),
                request_id: id.clone(),
            };
            async move {
                Ok(KvClient::new(channel)
                    .compare_and_set(request)
                    .await?
                    .into_inner())
            }
        })
        .await
        .map(|response| {
            self.note_echo(&id, &response.request_id);
            CasOutcome::from(response)
        })
    }

    /// One page of keys starting with `prefix`, in byte order, strictly after
    /// `start_after` when given. `limit` 0 asks for the server's default page size (1000;
    /// at most 10000). Returns the entries and whether more keys match.
    pub async fn scan(
        &self,
        prefix: impl AsRef<[u8]>,
        start_after: Option<&[u8]>,
        limit: u32,
    ) -> Result<(Vec<KeyValue>, bool), Error> {
        let prefix = prefix.as_ref();
        let response = self
            .call(OpKind::Read, |channel| {
                let request = ScanRequest {
                    prefix: prefix.to_vec(),
                    start_after: start_after.map(<[u8]>::to_vec).unwrap_or_default(),
                    limit,
                };
                async move { Ok(KvClient::new(channel).scan(request).await?.into_inner()) }
            })
            .await?;
        let entries = response.entries.into_iter().map(KeyValue::from).collect();
        Ok((entries, response.truncated))
    }

    /// Up to `max_entries` keys starting with `prefix`, following continuations page by
    /// page. Each page is a linearizable read of its own; the pages together are not one
    /// snapshot. Returns the entries and whether more keys match beyond them.
    pub async fn scan_up_to(
        &self,
        prefix: impl AsRef<[u8]>,
        start_after: Option<&[u8]>,
        max_entries: usize,
    ) -> Result<(Vec<KeyValue>, bool), Error> {
        let prefix = prefix.as_ref();
        let mut entries: Vec<KeyValue> = Vec::new();
        let mut cursor: Option<Vec<u8>> = start_after.map(<[u8]>::to_vec);
        loop {
            let wanted = max_entries.saturating_sub(entries.len());
            if wanted == 0 {
                // The caller's budget is spent; more may match.
                return Ok((entries, true));
            }
            let limit = u32::try_from(wanted)
                .unwrap_or(u32::MAX)
                .min(SCAN_PAGE_ENTRIES);
            let (page, truncated) = self.scan(prefix, cursor.as_deref(), limit).await?;
            let next_cursor = page.last().map(|kv| kv.key.clone());
            if let (Some(next), Some(previous)) = (&next_cursor, &cursor) {
                if next <= previous {
                    return Err(Error::Protocol(
                        "scan page did not advance past its start key".to_string(),
                    ));
                }
            }
            entries.extend(page);
            if entries.len() > max_entries {
                // A server that returned more than asked for: keep to the caller's budget.
                entries.truncate(max_entries);
                return Ok((entries, true));
            }
            if !truncated {
                return Ok((entries, false));
            }
            match next_cursor {
                Some(next) => cursor = Some(next),
                None => {
                    return Err(Error::Protocol(
                        "scan reported more keys but returned none".to_string(),
                    ))
                }
            }
        }
    }

    /// The cluster's nodes and Raft groups, as seen by the node that answers.
    pub async fn cluster_status(&self) -> Result<ClusterStatus, Error> {
        self.call(OpKind::Read, |channel| async move {
            Ok(ClusterClient::new(channel)
                .status(StatusRequest {})
                .await?
                .into_inner())
        })
        .await
        .map(ClusterStatus::from)
    }

    /// A write's reply echoed its request id: the cluster deduplicates by it.
    fn note_echo(&self, sent: &[u8], echoed: &[u8]) {
        if !sent.is_empty() && sent == echoed {
            self.inner.ids_honored.store(true, Ordering::Relaxed);
        }
    }

    /// Runs `attempt` against one endpoint after another until it succeeds, fails for
    /// good, or the call deadline passes. See [`crate::retry`] for what is retried.
    pub(crate) async fn call<T, F, Fut>(&self, kind: OpKind, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let inner = &*self.inner;
        let config = &inner.config;
        let started = Instant::now();
        let deadline = started + config.call_timeout;
        let mut backoff = Backoff::new(config.backoff_initial, config.backoff_max);
        let node_count = inner.nodes.len();
        let mut index = inner.preferred.load(Ordering::Relaxed) % node_count;
        let mut attempts: u32 = 0;
        let mut failures_this_round = 0;
        let mut maybe_applied = false;
        loop {
            let node = &inner.nodes[index];
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt_limit = match kind {
                OpKind::Read => remaining.min(config.read_attempt_timeout),
                OpKind::Write => remaining,
            };
            attempts += 1;
            let outcome = tokio::time::timeout(attempt_limit, attempt(node.channel.clone())).await;
            let disposition = match outcome {
                Ok(Ok(value)) => {
                    inner.preferred.store(index, Ordering::Relaxed);
                    return Ok(value);
                }
                Ok(Err(status)) => classify(&status, kind, &node.endpoint),
                Err(_elapsed) => {
                    let message = format!("{}: no answer within {attempt_limit:?}", node.endpoint);
                    match kind {
                        OpKind::Read => Disposition::Retry(Error::Timeout(message)),
                        OpKind::Write => Disposition::Fail(Error::OutcomeUnknown(message)),
                    }
                }
            };
            let last_error = match disposition {
                // Every write carries its request id on every attempt, and the cluster
                // applies an id at most once within its dedup window: a write whose
                // outcome is unknown may be sent again while the window lasts.
                Disposition::Fail(Error::OutcomeUnknown(message))
                    if kind == OpKind::Write
                        && inner.ids_honored.load(Ordering::Relaxed)
                        && started.elapsed() < WRITE_RETRY_WINDOW =>
                {
                    maybe_applied = true;
                    Error::OutcomeUnknown(message)
                }
                Disposition::Fail(error) => return Err(error),
                Disposition::Retry(error) => error,
            };

            index = (index + 1) % node_count;
            inner.preferred.store(index, Ordering::Relaxed);
            failures_this_round += 1;
            // Try every endpoint once before pausing: another node may well answer.
            let delay = if failures_this_round >= node_count {
                failures_this_round = 0;
                with_jitter(backoff.next_delay(), rand::random::<f64>() * 0.5 + 0.5)
            } else {
                Duration::ZERO
            };
            if Instant::now() + delay + MIN_ATTEMPT_TIME >= deadline {
                let error = match last_error {
                    // An earlier attempt may have applied: the outcome stays unknown.
                    Error::Unavailable(m) | Error::Transport(m) | Error::Timeout(m)
                        if maybe_applied =>
                    {
                        Error::OutcomeUnknown(m)
                    }
                    other => other,
                };
                return Err(error.gave_up(attempts, started.elapsed()));
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// How long after its first attempt a write whose outcome is unknown may still be retried:
/// well inside the cluster's 10-minute request-id dedup window.
const WRITE_RETRY_WINDOW: Duration = Duration::from_secs(5 * 60);

/// A fresh 16-byte id for one logical write, sent with each of its attempts.
fn new_request_id() -> Vec<u8> {
    rand::random::<u128>().to_be_bytes().to_vec()
}
