//! Request and response bodies: s3s's `StreamingBlob` ↔ the object service's
//! `BodyStream`. s3s needs a `Sync` stream for responses; the service's boxed stream is
//! only `Send`, so [`SyncBody`] holds it behind a mutex it never contends (only the
//! single poller, through `&mut`, ever reaches it).

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use s3s::dto::StreamingBlob;

use crate::object::service::BodyStream;

pub fn request_body(blob: Option<StreamingBlob>) -> BodyStream {
    match blob {
        None => futures::stream::empty().boxed(),
        Some(blob) => blob.map(|r| r.map_err(std::io::Error::other)).boxed(),
    }
}

pub struct SyncBody(Mutex<BodyStream>);

impl Stream for SyncBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().0.get_mut() {
            Ok(stream) => stream.as_mut().poll_next(cx),
            Err(_) => Poll::Ready(Some(Err(std::io::Error::other("body stream poisoned")))),
        }
    }
}

pub fn response_body(stream: BodyStream) -> StreamingBlob {
    StreamingBlob::wrap(SyncBody(Mutex::new(stream)))
}
