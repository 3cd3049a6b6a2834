//! Service errors → S3 XML error documents: the code a real AWS client matches on, the
//! HTTP status that goes with it, and the extra headers S3 adds (a delete marker's flag
//! and version id).

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use s3s::{S3Error, S3ErrorCode};

use crate::object::model::ObjectError;
use crate::object::service::ServiceError;

pub fn s3_error(err: ServiceError) -> S3Error {
    let code = S3ErrorCode::from_bytes(err.code().as_bytes()).unwrap_or(S3ErrorCode::InternalError);
    let status =
        StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    if let ServiceError::Object(object) = &err {
        match object {
            ObjectError::NoSuchKey {
                delete_marker: Some(version_id),
            } => {
                headers.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
                if let Ok(v) = HeaderValue::from_str(version_id.as_str()) {
                    headers.insert("x-amz-version-id", v);
                }
            }
            ObjectError::MethodNotAllowed { version_id, .. } => {
                headers.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
                if let Ok(v) = HeaderValue::from_str(version_id.as_str()) {
                    headers.insert("x-amz-version-id", v);
                }
            }
            _ => {}
        }
    }
    if matches!(err, ServiceError::Internal(_)) {
        tracing::error!("S3 request failed: {err}");
    }
    let mut e = S3Error::with_message(code, err.to_string());
    e.set_status_code(status);
    if !headers.is_empty() {
        e.set_headers(headers);
    }
    e
}

/// A model error (bad name, bad key...) found while decoding the request.
pub fn invalid(err: ObjectError) -> S3Error {
    s3_error(ServiceError::Object(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_follow_s3() {
        let e = s3_error(ServiceError::Object(ObjectError::NoSuchBucket("b".into())));
        assert_eq!(e.code(), &S3ErrorCode::NoSuchBucket);
        assert_eq!(e.status_code(), Some(StatusCode::NOT_FOUND));
        let e = s3_error(ServiceError::Object(ObjectError::BucketNotEmpty));
        assert_eq!(e.code(), &S3ErrorCode::BucketNotEmpty);
        assert_eq!(e.status_code(), Some(StatusCode::CONFLICT));
    }

    #[test]
    fn a_delete_marker_is_flagged() {
        let marker = crate::object::model::VersionId::generate(1, 2);
        let e = s3_error(ServiceError::Object(ObjectError::NoSuchKey {
            delete_marker: Some(marker.clone()),
        }));
        let h = e.headers().expect("headers");
        assert_eq!(h["x-amz-delete-marker"], "true");
        assert_eq!(h["x-amz-version-id"], marker.as_str());
    }
}
