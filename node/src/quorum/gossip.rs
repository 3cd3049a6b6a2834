//! Background work of this node's segments (skeleton: filled in by the segment work).

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::segment_host::SegmentHost;
use super::QuorumSettings;

pub struct SegmentWorker {
    #[allow(dead_code)]
    host: Arc<SegmentHost>,
    #[allow(dead_code)]
    settings: QuorumSettings,
}

impl SegmentWorker {
    pub fn new(host: Arc<SegmentHost>, settings: QuorumSettings) -> Self {
        SegmentWorker { host, settings }
    }

    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
    }
}
