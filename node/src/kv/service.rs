//! The KV service: validates requests, routes each key to its data group's leader, and
//! fans prefix scans out to every data group, merging their sorted pages.

use std::sync::Arc;

use super::model::{
    validate_key, validate_scan_limit, validate_value, KvCommand, KvError, KvQuery, KvReply,
    Versioned,
};
use crate::data_group::{DataCommand, DataQuery};
use crate::raft::codec;
use crate::raft::router::{RouteError, Router};

pub struct KvService {
    router: Arc<Router>,
    max_value_bytes: usize,
}

/// The outcome of a compare-and-set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasOutcome {
    pub succeeded: bool,
    pub current: Option<Versioned>,
}

impl From<RouteError> for KvError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::OutcomeUnknown(_) => KvError::OutcomeUnknown(e.to_string()),
            RouteError::UnknownGroup(_) => KvError::Internal(e.to_string()),
            _ => KvError::Unavailable(e.to_string()),
        }
    }
}

fn unexpected(reply: KvReply) -> KvError {
    match reply {
        KvReply::Rejected(e) => KvError::Internal(format!("rejected by the state machine: {e}")),
        other => KvError::Internal(format!("unexpected reply {other:?}")),
    }
}

impl KvService {
    pub fn new(router: Arc<Router>, max_value_bytes: usize) -> Self {
        KvService {
            router,
            max_value_bytes,
        }
    }

    /// `request_id`: the client's id for this write, the same on each of its retries, so
    /// that a retry of an applied write is not applied twice; `None`: a fresh one.
    async fn write(
        &self,
        key: &[u8],
        command: KvCommand,
        request_id: Option<u128>,
    ) -> Result<KvReply, KvError> {
        let group = self.router.directory().group_for_key(key);
        let bytes = self
            .router
            .write_once(
                group,
                codec::encode(&DataCommand::Kv(command)),
                request_id.unwrap_or_else(rand::random),
            )
            .await?;
        codec::decode(&bytes).map_err(KvError::Internal)
    }

    async fn query(&self, group: u64, query: KvQuery) -> Result<KvReply, KvError> {
        let bytes = self
            .router
            .read(group, codec::encode(&DataQuery::Kv(query)))
            .await?;
        codec::decode(&bytes).map_err(KvError::Internal)
    }

    pub async fn put(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
        request_id: Option<u128>,
    ) -> Result<u64, KvError> {
        validate_key(&key)?;
        validate_value(&value, self.max_value_bytes)?;
        match self
            .write(&key.clone(), KvCommand::Put { key, value }, request_id)
            .await?
        {
            KvReply::Put { version } => Ok(version),
            other => Err(unexpected(other)),
        }
    }

    pub async fn get(&self, key: Vec<u8>) -> Result<Option<Versioned>, KvError> {
        validate_key(&key)?;
        let group = self.router.directory().group_for_key(&key);
        match self.query(group, KvQuery::Get { key }).await? {
            KvReply::Got(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    pub async fn delete(&self, key: Vec<u8>, request_id: Option<u128>) -> Result<bool, KvError> {
        validate_key(&key)?;
        match self
            .write(&key.clone(), KvCommand::Delete { key }, request_id)
            .await?
        {
            KvReply::Deleted { existed } => Ok(existed),
            other => Err(unexpected(other)),
        }
    }

    pub async fn compare_and_set(
        &self,
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        request_id: Option<u128>,
    ) -> Result<CasOutcome, KvError> {
        validate_key(&key)?;
        if let Some(v) = &new {
            validate_value(v, self.max_value_bytes)?;
        }
        match self
            .write(
                &key.clone(),
                KvCommand::Cas { key, expected, new },
                request_id,
            )
            .await?
        {
            KvReply::Cas { succeeded, current } => Ok(CasOutcome { succeeded, current }),
            other => Err(unexpected(other)),
        }
    }

    /// Keys starting with `prefix` and greater than `start_after`, in byte order, across all
    /// data groups; `truncated` says more remain.
    pub async fn scan(
        &self,
        prefix: Vec<u8>,
        start_after: Vec<u8>,
        limit: u32,
    ) -> Result<(Vec<(Vec<u8>, Versioned)>, bool), KvError> {
        let limit = validate_scan_limit(limit)?;
        if prefix.len() > super::model::MAX_KEY_BYTES
            || start_after.len() > super::model::MAX_KEY_BYTES
        {
            return Err(KvError::InvalidArgument(
                "prefix and start_after are limited to 4096 bytes".into(),
            ));
        }
        let groups: Vec<u64> = self.router.directory().data_group_ids().collect();
        let pages = futures::future::join_all(groups.into_iter().map(|g| {
            self.query(
                g,
                KvQuery::Scan {
                    prefix: prefix.clone(),
                    start_after: start_after.clone(),
                    limit,
                },
            )
        }))
        .await;
        let mut merged = Vec::new();
        let mut truncated = false;
        for page in pages {
            match page? {
                KvReply::Scanned {
                    entries,
                    truncated: t,
                } => {
                    truncated |= t;
                    merged.extend(entries);
                }
                other => return Err(unexpected(other)),
            }
        }
        merged.sort_by(|a, b| a.0.cmp(&b.0));
        if merged.len() > limit as usize {
            merged.truncate(limit as usize);
            truncated = true;
        }
        Ok((merged, truncated))
    }
}
