//! Message move tasks: StartMessageMoveTask, CancelMessageMoveTask, ListMessageMoveTasks
//! (redrive out of a dead-letter queue, back to the source queues or to a named queue).

use serde_json::{json, Map, Value};

use super::wire::{required, ListMoveTasksInput, StartMoveTaskInput, TaskHandleInput};
use super::SqsError;
use crate::queue::model::QueueName;
use crate::queue::service::QueueService;
use crate::queue::state::MoveStatus;
use crate::queue::QueueError;

fn queue_of_arn(field: &str, arn: &str) -> Result<QueueName, SqsError> {
    QueueName::from_arn(arn).ok_or_else(|| {
        QueueError::invalid_value(
            field,
            arn,
            "It must be the ARN of an SQS queue of this account.",
        )
        .into()
    })
}

pub async fn start(s: &QueueService, input: StartMoveTaskInput) -> Result<Value, SqsError> {
    let source = queue_of_arn("SourceArn", &required("SourceArn", input.source_arn)?)?;
    let destination = input
        .destination_arn
        .map(|a| queue_of_arn("DestinationArn", &a))
        .transpose()?;
    let rate = match input.max_number_of_messages_per_second {
        None => None,
        Some(r) => Some(u32::try_from(r).map_err(|_| {
            QueueError::invalid_value(
                "MaxNumberOfMessagesPerSecond",
                r,
                "Must be between 1 and 500.",
            )
        })?),
    };
    let handle = s.start_move_task(&source, destination, rate).await?;
    Ok(json!({ "TaskHandle": handle }))
}

pub async fn cancel(s: &QueueService, input: TaskHandleInput) -> Result<Value, SqsError> {
    let handle = required("TaskHandle", input.task_handle)?;
    let moved = s.cancel_move_task(&handle).await?;
    Ok(json!({ "ApproximateNumberOfMessagesMoved": moved }))
}

pub async fn list(s: &QueueService, input: ListMoveTasksInput) -> Result<Value, SqsError> {
    let source = queue_of_arn("SourceArn", &required("SourceArn", input.source_arn)?)?;
    let max = match input.max_results {
        None => 1,
        Some(m) => u32::try_from(m).unwrap_or(0),
    };
    let tasks = s.list_move_tasks(&source, max).await?;
    let results: Vec<Value> = tasks
        .iter()
        .map(|t| {
            let mut out = Map::new();
            if t.status == MoveStatus::Running {
                out.insert("TaskHandle".into(), Value::from(t.handle.clone()));
            }
            out.insert("Status".into(), Value::from(t.status.as_str()));
            out.insert("SourceArn".into(), Value::from(source.arn()));
            if let Some(d) = &t.destination {
                out.insert("DestinationArn".into(), Value::from(d.arn()));
            }
            if let Some(r) = t.max_per_second {
                out.insert("MaxNumberOfMessagesPerSecond".into(), Value::from(r));
            }
            out.insert(
                "ApproximateNumberOfMessagesMoved".into(),
                Value::from(t.moved),
            );
            out.insert(
                "ApproximateNumberOfMessagesToMove".into(),
                Value::from(t.to_move),
            );
            if let Some(f) = &t.failure {
                out.insert("FailureReason".into(), Value::from(f.clone()));
            }
            out.insert("StartedTimestamp".into(), Value::from(t.started_ms));
            Value::Object(out)
        })
        .collect();
    Ok(json!({ "Results": results }))
}
