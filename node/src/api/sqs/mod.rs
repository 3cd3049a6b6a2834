//! SQS on the HTTP edge: AWS JSON 1.0 (`POST /`, `X-Amz-Target: AmazonSQS.<Operation>`),
//! SigV4 with the edge's credentials, errors as SQS renders them (`errors`). Each
//! operation parses its JSON shape (`wire`), calls the queue service and renders the
//! answer; `queues`, `messages` and `move_tasks` hold the operations by concern.
//!
//! Queue URLs are `http://<host>/<account>/<queue>`: a request is routed by the URL's path,
//! whatever host it names, and URLs handed out name the host the client called.

mod digest;
mod errors;
mod messages;
mod move_tasks;
mod queues;
mod wire;

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use errors::SqsError;

use super::aws_json::{self, JsonRequestError};
use super::s3::access::Authorizer;
use super::s3::auth::AccessKeys;
use super::sigv4::Caller;
use crate::queue::model::{QueueName, ACCOUNT_ID};
use crate::queue::service::{random_uuid, QueueService};
use crate::queue::QueueError;

/// The `X-Amz-Target` prefix of SQS requests.
pub const TARGET_PREFIX: &str = "AmazonSQS.";
/// Largest request body read: a 1 MiB batch with base64 binary attributes and JSON framing.
const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

pub struct SqsApi {
    service: Arc<QueueService>,
    keys: Arc<dyn AccessKeys>,
    authorizer: Arc<dyn Authorizer>,
}

/// What every operation knows of its request.
pub struct Call {
    pub caller: Caller,
    /// `host[:port]` the client called, for the queue URLs handed out.
    pub host: String,
}

impl Call {
    pub fn queue_url(&self, queue: &QueueName) -> String {
        format!("http://{}/{ACCOUNT_ID}/{}", self.host, queue.as_str())
    }
}

/// The queue a queue URL names: its path is `/<account>/<queue>`.
pub fn queue_of_url(url: &str) -> Result<QueueName, QueueError> {
    let invalid =
        || QueueError::InvalidAddress(format!("The address {url} is not valid for this endpoint."));
    let path = match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            rest.find('/').map(|j| &rest[j..]).unwrap_or("")
        }
        None => url,
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments[..] {
        [account, name] => {
            if account != ACCOUNT_ID {
                return Err(QueueError::QueueDoesNotExist);
            }
            QueueName::parse(name).map_err(|_| QueueError::QueueDoesNotExist)
        }
        _ => Err(invalid()),
    }
}

pub fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, SqsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| SqsError::malformed(format!("The request body is not valid: {e}")))
}

impl SqsApi {
    pub fn new(
        service: Arc<QueueService>,
        keys: Arc<dyn AccessKeys>,
        authorizer: Arc<dyn Authorizer>,
    ) -> Self {
        SqsApi {
            service,
            keys,
            authorizer,
        }
    }

    pub fn service(&self) -> &QueueService {
        &self.service
    }

    /// Whether a request is for SQS (by its target header).
    pub fn claims(req: &Request) -> bool {
        aws_json::target(req).is_some_and(|t| t.starts_with(TARGET_PREFIX))
    }

    pub async fn handle(&self, req: Request) -> Response {
        let id = random_uuid();
        match self.serve(req).await {
            Ok(value) => aws_json::ok_response(&value, errors::CONTENT_TYPE, &id),
            Err(e) => e.render(&id),
        }
    }

    async fn serve(&self, req: Request) -> Result<Value, SqsError> {
        let signed = aws_json::read_signed(req, TARGET_PREFIX, MAX_BODY_BYTES, self.keys.as_ref())
            .await
            .map_err(|e| match e {
                JsonRequestError::TooLarge(limit) => SqsError::too_large(limit),
                JsonRequestError::Signature(e) => SqsError::from(e),
            })?;
        if !signed.is_post {
            return Err(SqsError::malformed(
                "SQS's JSON protocol takes POST requests.",
            ));
        }
        let call = Call {
            caller: signed.caller,
            host: signed.host,
        };
        let (operation, body) = (signed.operation, signed.body);
        self.authorize(&call, &operation, &body)?;
        self.dispatch(&call, &operation, &body).await
    }

    /// IAM's seam: may the caller run this operation on this queue?
    fn authorize(&self, call: &Call, operation: &str, body: &[u8]) -> Result<(), SqsError> {
        let resource = serde_json::from_slice::<wire::QueueUrlOnly>(body)
            .ok()
            .and_then(|b| b.queue_url)
            .and_then(|u| queue_of_url(&u).ok())
            .map(|q| q.arn())
            .unwrap_or_else(|| "*".to_string());
        if self.authorizer.allows(
            &call.caller.access_key,
            &format!("sqs:{operation}"),
            &resource,
        ) {
            Ok(())
        } else {
            Err(SqsError::access_denied())
        }
    }

    async fn dispatch(&self, call: &Call, operation: &str, body: &[u8]) -> Result<Value, SqsError> {
        let s = &self.service;
        match operation {
            "CreateQueue" => queues::create(s, call, parse(body)?).await,
            "GetQueueUrl" => queues::get_url(s, call, parse(body)?).await,
            "ListQueues" => queues::list(s, call, parse(body)?).await,
            "DeleteQueue" => queues::delete(s, parse(body)?).await,
            "GetQueueAttributes" => queues::get_attributes(s, parse(body)?).await,
            "SetQueueAttributes" => queues::set_attributes(s, parse(body)?).await,
            "PurgeQueue" => queues::purge(s, parse(body)?).await,
            "TagQueue" => queues::tag(s, parse(body)?).await,
            "UntagQueue" => queues::untag(s, parse(body)?).await,
            "ListQueueTags" => queues::list_tags(s, parse(body)?).await,
            "ListDeadLetterSourceQueues" => queues::dead_letter_sources(s, call, parse(body)?).await,
            "SendMessage" => messages::send(s, call, parse(body)?).await,
            "SendMessageBatch" => messages::send_batch(s, call, parse(body)?).await,
            "ReceiveMessage" => messages::receive(s, parse(body)?).await,
            "DeleteMessage" => messages::delete(s, parse(body)?).await,
            "DeleteMessageBatch" => messages::delete_batch(s, parse(body)?).await,
            "ChangeMessageVisibility" => messages::change_visibility(s, parse(body)?).await,
            "ChangeMessageVisibilityBatch" => {
                messages::change_visibility_batch(s, parse(body)?).await
            }
            "StartMessageMoveTask" => move_tasks::start(s, parse(body)?).await,
            "CancelMessageMoveTask" => move_tasks::cancel(s, parse(body)?).await,
            "ListMessageMoveTasks" => move_tasks::list(s, parse(body)?).await,
            "AddPermission" | "RemovePermission" => Err(QueueError::UnsupportedOperation(
                format!("{operation} is not supported yet: queue policies are not evaluated (IAM comes later)."),
            )
            .into()),
            _ => Err(SqsError::unknown_operation(operation)),
        }
    }
}

/// The queue a request's QueueUrl names.
pub fn queue_in(url: Option<String>) -> Result<QueueName, SqsError> {
    let url = wire::required("QueueUrl", url)?;
    Ok(queue_of_url(&url)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_route_by_path_whatever_the_host() {
        let q = |u: &str| queue_of_url(u).map(String::from);
        assert_eq!(
            q("http://localhost:4566/000000000000/orders").unwrap(),
            "orders"
        );
        assert_eq!(
            q("https://sqs.us-east-1.amazonaws.com/000000000000/a.fifo").unwrap(),
            "a.fifo"
        );
        assert_eq!(q("/000000000000/orders").unwrap(), "orders");
        assert_eq!(
            q("http://h/123456789012/orders"),
            Err(QueueError::QueueDoesNotExist)
        );
        assert!(matches!(
            q("http://h/orders"),
            Err(QueueError::InvalidAddress(_))
        ));
        assert!(matches!(q(""), Err(QueueError::InvalidAddress(_))));
    }
}
