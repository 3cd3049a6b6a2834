//! Domain types of the object store: bucket names, object keys, version and upload ids,
//! storage classes, ETags, checksums, object versions and where their bytes live.
//!
//! Every type that comes from a client is built through a constructor that validates it and
//! returns an [`ObjectError`] carrying the S3 error code a real client expects. The same
//! checks run when a value is decoded (`serde(try_from)`), so a command replayed from the
//! Raft log or a record read back from disk can never smuggle in a value the API would
//! have refused.
//!
//! This module holds no state and does no I/O; the deterministic apply lives in `state`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// S3's upper bound on part numbers (and so on the number of parts of an upload).
pub const MAX_PART_NUMBER: u16 = 10_000;
/// Every part but the last of a completed multipart upload must be at least this large.
pub const MIN_PART_SIZE_BYTES: u64 = 5 * 1024 * 1024;
/// Largest object key, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// S3 caps user metadata (names plus values) at 2 KiB.
pub const MAX_USER_METADATA_BYTES: usize = 2048;
pub const MAX_OBJECT_TAGS: usize = 10;
pub const MAX_BUCKET_TAGS: usize = 50;
const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;

/// An error of the object store that reaches a client, with its S3 code and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ObjectError {
    #[error("The specified bucket does not exist: {0}")]
    NoSuchBucket(String),
    /// The key has no current version. When its newest version is a delete marker, S3
    /// answers with `x-amz-delete-marker: true` and the marker's version id.
    #[error("The specified key does not exist.")]
    NoSuchKey { delete_marker: Option<VersionId> },
    #[error("The specified version does not exist.")]
    NoSuchVersion,
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty,
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    BucketAlreadyOwnedByYou,
    #[error("The requested bucket name is not available.")]
    BucketAlreadyExists,
    #[error("The specified bucket is not valid: {0}")]
    InvalidBucketName(String),
    #[error("Your key is too long")]
    KeyTooLong,
    #[error("The specified multipart upload does not exist.")]
    NoSuchUpload,
    #[error("One or more of the specified parts could not be found or its entity tag did not match: {0}")]
    InvalidPart(String),
    #[error("The list of parts was not in ascending order.")]
    InvalidPartOrder,
    #[error("Your proposed upload is smaller than the minimum allowed object size: {0}")]
    EntityTooSmall(String),
    #[error("At least one of the preconditions you specified did not hold.")]
    PreconditionFailed,
    #[error("{0}")]
    InvalidArgument(String),
    /// The addressed version is a delete marker (S3 answers 405 with the marker flag).
    #[error("The specified method is not allowed against this resource.")]
    MethodNotAllowed {
        version_id: VersionId,
        last_modified_ms: u64,
    },
    #[error("The storage class you specified is not valid: {0}")]
    InvalidStorageClass(String),
    #[error("The tag provided was not a valid tag: {0}")]
    InvalidTag(String),
    #[error("Your metadata headers exceed the maximum allowed metadata size.")]
    MetadataTooLarge,
    #[error("The XML you provided was not well-formed or did not validate against our published schema: {0}")]
    MalformedXml(String),
    #[error(
        "A conflicting conditional operation is currently in progress against this resource: {0}"
    )]
    OperationAborted(String),
    /// A Range outside the object; S3 answers 416 with `Content-Range: bytes */size`.
    #[error("The requested range is not satisfiable")]
    InvalidRange { object_size: u64 },
    #[error("Your proposed upload exceeds the maximum allowed object size: {0}")]
    EntityTooLarge(String),
    #[error("{0}")]
    InvalidRequest(String),
}

impl ObjectError {
    /// The S3 error code (`<Code>` of the XML error document).
    pub fn code(&self) -> &'static str {
        match self {
            ObjectError::NoSuchBucket(_) => "NoSuchBucket",
            ObjectError::NoSuchKey { .. } => "NoSuchKey",
            ObjectError::NoSuchVersion => "NoSuchVersion",
            ObjectError::BucketNotEmpty => "BucketNotEmpty",
            ObjectError::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            ObjectError::BucketAlreadyExists => "BucketAlreadyExists",
            ObjectError::InvalidBucketName(_) => "InvalidBucketName",
            ObjectError::KeyTooLong => "KeyTooLongError",
            ObjectError::NoSuchUpload => "NoSuchUpload",
            ObjectError::InvalidPart(_) => "InvalidPart",
            ObjectError::InvalidPartOrder => "InvalidPartOrder",
            ObjectError::EntityTooSmall(_) => "EntityTooSmall",
            ObjectError::PreconditionFailed => "PreconditionFailed",
            ObjectError::InvalidArgument(_) => "InvalidArgument",
            ObjectError::MethodNotAllowed { .. } => "MethodNotAllowed",
            ObjectError::InvalidStorageClass(_) => "InvalidStorageClass",
            ObjectError::InvalidTag(_) => "InvalidTag",
            ObjectError::MetadataTooLarge => "MetadataTooLarge",
            ObjectError::MalformedXml(_) => "MalformedXML",
            ObjectError::OperationAborted(_) => "OperationAborted",
            ObjectError::InvalidRange { .. } => "InvalidRange",
            ObjectError::EntityTooLarge(_) => "EntityTooLarge",
            ObjectError::InvalidRequest(_) => "InvalidRequest",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            ObjectError::NoSuchBucket(_)
            | ObjectError::NoSuchKey { .. }
            | ObjectError::NoSuchVersion
            | ObjectError::NoSuchUpload => 404,
            ObjectError::BucketNotEmpty
            | ObjectError::BucketAlreadyOwnedByYou
            | ObjectError::BucketAlreadyExists
            | ObjectError::OperationAborted(_) => 409,
            ObjectError::PreconditionFailed => 412,
            ObjectError::InvalidRange { .. } => 416,
            ObjectError::MethodNotAllowed { .. } => 405,
            ObjectError::InvalidBucketName(_)
            | ObjectError::KeyTooLong
            | ObjectError::InvalidPart(_)
            | ObjectError::InvalidPartOrder
            | ObjectError::EntityTooSmall(_)
            | ObjectError::InvalidArgument(_)
            | ObjectError::InvalidStorageClass(_)
            | ObjectError::InvalidTag(_)
            | ObjectError::MetadataTooLarge
            | ObjectError::MalformedXml(_)
            | ObjectError::EntityTooLarge(_)
            | ObjectError::InvalidRequest(_) => 400,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ObjectError::InvalidArgument(message.into())
    }
}

/// A bucket name that follows S3's naming rules for general purpose buckets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BucketName(String);

impl BucketName {
    pub fn parse(name: &str) -> Result<Self, ObjectError> {
        let refuse = |why: &str| Err(ObjectError::InvalidBucketName(format!("{name:?}: {why}")));
        if !(3..=63).contains(&name.len()) {
            return refuse("must be 3 to 63 characters long");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return refuse("may hold only lowercase letters, digits, dots and hyphens");
        }
        let bytes = name.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return refuse("must begin and end with a letter or digit");
        }
        if name.contains("..") {
            return refuse("must not contain two adjacent dots");
        }
        if looks_like_ipv4(name) {
            return refuse("must not be formatted as an IP address");
        }
        for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
            if name.starts_with(prefix) {
                return refuse("uses a reserved prefix");
            }
        }
        for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
            if name.ends_with(suffix) {
                return refuse("uses a reserved suffix");
            }
        }
        Ok(BucketName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn looks_like_ipv4(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

impl TryFrom<String> for BucketName {
    type Error = ObjectError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        BucketName::parse(&value)
    }
}

impl From<BucketName> for String {
    fn from(value: BucketName) -> Self {
        value.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object key: 1 to 1024 bytes of UTF-8 (any character, NUL included).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(key: &str) -> Result<Self, ObjectError> {
        if key.is_empty() {
            return Err(ObjectError::invalid("the object key must not be empty"));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(ObjectError::KeyTooLong);
        }
        Ok(ObjectKey(key.to_string()))
    }

    /// A key from stored bytes (bytes that are not UTF-8 are a corrupt record).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ObjectError> {
        match std::str::from_utf8(bytes) {
            Ok(s) => ObjectKey::parse(s),
            Err(_) => Err(ObjectError::invalid("the object key is not UTF-8")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = ObjectError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ObjectKey::parse(&value)
    }
}

impl From<ObjectKey> for String {
    fn from(value: ObjectKey) -> Self {
        value.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A version id as clients see it: `null` for the version written while versioning was
/// off or suspended, otherwise an id the proposing node generated with [`VersionId::generate`].
///
/// Generated ids are 32 lowercase hex digits: `u64::MAX - now_ms` then 64 random bits, so
/// their text sorts newest first. The state machine does not rely on that order (clocks of
/// two proposers may disagree, and the `null` version moves when it is rewritten): versions
/// are ordered by a per-bucket commit sequence, see `keys`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VersionId(String);

impl VersionId {
    pub const NULL: &'static str = "null";

    pub fn null() -> Self {
        VersionId(Self::NULL.to_string())
    }

    pub fn generate(now_ms: u64, random: u64) -> Self {
        VersionId(format!("{:016x}{:016x}", u64::MAX - now_ms, random))
    }

    /// Parse a client's `versionId`; a malformed one is S3's "Invalid version id specified".
    pub fn parse(id: &str) -> Result<Self, ObjectError> {
        if id == Self::NULL || is_lower_hex(id, 32) {
            Ok(VersionId(id.to_string()))
        } else {
            Err(ObjectError::invalid("Invalid version id specified"))
        }
    }

    pub fn is_null(&self) -> bool {
        self.0 == Self::NULL
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for VersionId {
    type Error = ObjectError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        VersionId::parse(&value)
    }
}

impl From<VersionId> for String {
    fn from(value: VersionId) -> Self {
        value.0
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A multipart upload id: 32 lowercase hex digits, `now_ms` then 64 random bits, so the
/// uploads of one key list in the order they were initiated (as S3 lists them).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UploadId(String);

impl UploadId {
    pub fn generate(now_ms: u64, random: u64) -> Self {
        UploadId(format!("{now_ms:016x}{random:016x}"))
    }

    /// Parse a client's `uploadId`; an id we could never have issued does not exist.
    pub fn parse(id: &str) -> Result<Self, ObjectError> {
        if is_lower_hex(id, 32) {
            Ok(UploadId(id.to_string()))
        } else {
            Err(ObjectError::NoSuchUpload)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UploadId {
    type Error = ObjectError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        UploadId::parse(&value)
    }
}

impl From<UploadId> for String {
    fn from(value: UploadId) -> Self {
        value.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bucket's versioning state. A bucket starts `Unversioned` and, once versioning has
/// been enabled, can only move between `Enabled` and `Suspended`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersioningState {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

impl VersioningState {
    /// The `<Status>` of GetBucketVersioning (absent for a never-versioned bucket).
    pub fn status(self) -> Option<&'static str> {
        match self {
            VersioningState::Unversioned => None,
            VersioningState::Enabled => Some("Enabled"),
            VersioningState::Suspended => Some("Suspended"),
        }
    }

    /// Parse the `<Status>` of PutBucketVersioning (only the two settable states).
    pub fn parse_status(status: &str) -> Result<Self, ObjectError> {
        match status {
            "Enabled" => Ok(VersioningState::Enabled),
            "Suspended" => Ok(VersioningState::Suspended),
            other => Err(ObjectError::MalformedXml(format!(
                "versioning status {other:?} is neither Enabled nor Suspended"
            ))),
        }
    }
}

/// `x-amz-storage-class`. The erasure layout of each class comes from configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StorageClass {
    #[default]
    Standard,
    ReducedRedundancy,
    StandardIa,
    OnezoneIa,
    IntelligentTiering,
    Glacier,
    DeepArchive,
    GlacierIr,
}

impl StorageClass {
    pub const ALL: [StorageClass; 8] = [
        StorageClass::Standard,
        StorageClass::ReducedRedundancy,
        StorageClass::StandardIa,
        StorageClass::OnezoneIa,
        StorageClass::IntelligentTiering,
        StorageClass::Glacier,
        StorageClass::DeepArchive,
        StorageClass::GlacierIr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::ReducedRedundancy => "REDUCED_REDUNDANCY",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::OnezoneIa => "ONEZONE_IA",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::Glacier => "GLACIER",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
            StorageClass::GlacierIr => "GLACIER_IR",
        }
    }

    pub fn parse(name: &str) -> Result<Self, ObjectError> {
        StorageClass::ALL
            .into_iter()
            .find(|class| class.as_str() == name)
            .ok_or_else(|| ObjectError::InvalidStorageClass(name.to_string()))
    }

    /// Archive classes need a restore before their data can be read.
    pub fn is_archive(self) -> bool {
        matches!(self, StorageClass::Glacier | StorageClass::DeepArchive)
    }
}

impl fmt::Display for StorageClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entity tag, kept without its surrounding quotes: the hex MD5 of a single-part
/// object, or `hex(md5(md5(part 1) ++ ... ++ md5(part N)))-N` after a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ETag(String);

impl ETag {
    /// Accepts a quoted or unquoted tag (clients send both in If-Match and in
    /// CompleteMultipartUpload).
    pub fn parse(tag: &str) -> Result<Self, ObjectError> {
        let inner = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(tag);
        if inner.is_empty()
            || inner.len() > 128
            || !inner.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
        {
            return Err(ObjectError::invalid(format!("malformed ETag {tag:?}")));
        }
        Ok(ETag(inner.to_string()))
    }

    pub fn from_md5(digest: &[u8; 16]) -> Self {
        ETag(to_hex(digest))
    }

    /// The ETag of a completed multipart upload from its parts' MD5 digests.
    pub fn multipart(part_md5s: &[[u8; 16]]) -> Self {
        use md5::{Digest, Md5};
        let mut hasher = Md5::new();
        for digest in part_md5s {
            hasher.update(digest);
        }
        let out = hasher.finalize();
        ETag(format!("{}-{}", to_hex(out.as_slice()), part_md5s.len()))
    }

    /// The 16 bytes of a plain MD5 ETag (None for a multipart ETag).
    pub fn md5(&self) -> Option<[u8; 16]> {
        if !is_lower_hex(&self.0.to_ascii_lowercase(), 32) {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&self.0[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The header form, in double quotes.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

impl TryFrom<String> for ETag {
    type Error = ObjectError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ETag::parse(&value)
    }
}

impl From<ETag> for String {
    fn from(value: ETag) -> Self {
        value.0
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 4] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    pub fn parse(name: &str) -> Result<Self, ObjectError> {
        let upper = name.to_ascii_uppercase();
        ChecksumAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == upper)
            .ok_or_else(|| ObjectError::invalid(format!("unknown checksum algorithm {name:?}")))
    }

    /// The header that carries a value, e.g. `x-amz-checksum-crc32c`.
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    pub fn digest_bytes(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }
}

/// A full-object checksum as sent in `x-amz-checksum-*` (base64 of the digest). The edge
/// verifies it against the bytes; the state only keeps it well-formed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub value_b64: String,
}

impl Checksum {
    pub fn new(algorithm: ChecksumAlgorithm, value_b64: &str) -> Result<Self, ObjectError> {
        let checksum = Checksum {
            algorithm,
            value_b64: value_b64.to_string(),
        };
        checksum.validate()?;
        Ok(checksum)
    }

    pub fn validate(&self) -> Result<(), ObjectError> {
        let expected_len = self.algorithm.digest_bytes().div_ceil(3) * 4;
        let well_formed = self.value_b64.len() == expected_len
            && self
                .value_b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
        if well_formed {
            Ok(())
        } else {
            Err(ObjectError::invalid(format!(
                "Value for {} header is invalid.",
                self.algorithm.header_name()
            )))
        }
    }
}

/// Object or bucket tags (unique keys; S3 limits counts and lengths, checked by `validate`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagSet(pub BTreeMap<String, String>);

impl TagSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Build from pairs, refusing duplicate keys as S3 does.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
        max_tags: usize,
    ) -> Result<Self, ObjectError> {
        let mut tags = BTreeMap::new();
        for (key, value) in pairs {
            if tags.insert(key.clone(), value).is_some() {
                return Err(ObjectError::InvalidTag(format!(
                    "Cannot provide multiple Tags with the same key: {key:?}"
                )));
            }
        }
        let set = TagSet(tags);
        set.validate(max_tags)?;
        Ok(set)
    }

    pub fn validate(&self, max_tags: usize) -> Result<(), ObjectError> {
        if self.0.len() > max_tags {
            return Err(ObjectError::InvalidTag(format!(
                "Object tags cannot be greater than {max_tags}"
            )));
        }
        for (key, value) in &self.0 {
            let key_chars = key.chars().count();
            if key_chars == 0 || key_chars > MAX_TAG_KEY_CHARS {
                return Err(ObjectError::InvalidTag(format!(
                    "The TagKey you have provided is invalid: {key:?}"
                )));
            }
            if value.chars().count() > MAX_TAG_VALUE_CHARS {
                return Err(ObjectError::InvalidTag(format!(
                    "The TagValue you have provided is invalid: {value:?}"
                )));
            }
            if key.starts_with("aws:") {
                return Err(ObjectError::InvalidTag(
                    "Your TagKey cannot be prefixed with aws:".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The standard HTTP headers stored with an object and returned on GET/HEAD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHeaders {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub expires: Option<String>,
}

/// User metadata (`x-amz-meta-*`), names lower-cased by the edge.
pub type UserMetadata = BTreeMap<String, String>;

pub fn validate_user_metadata(metadata: &UserMetadata) -> Result<(), ObjectError> {
    let total: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_USER_METADATA_BYTES {
        return Err(ObjectError::MetadataTooLarge);
    }
    if metadata.keys().any(|k| k.is_empty()) {
        return Err(ObjectError::invalid(
            "user metadata names must not be empty",
        ));
    }
    Ok(())
}

/// How an object's bytes are erasure coded: `data_shards + parity_shards` shards per
/// stripe of `stripe_bytes` (the last stripe may be shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardLayout {
    pub data_shards: u8,
    pub parity_shards: u8,
    pub stripe_bytes: u32,
}

impl ShardLayout {
    pub fn total_shards(&self) -> usize {
        usize::from(self.data_shards) + usize::from(self.parity_shards)
    }

    pub fn validate(&self) -> Result<(), ObjectError> {
        if self.data_shards == 0 || self.stripe_bytes == 0 {
            return Err(ObjectError::invalid(
                "a shard layout needs at least one data shard and a non-zero stripe",
            ));
        }
        Ok(())
    }
}

/// Erasure-coded data: one blob id names every shard file of the object (or part) on
/// every node; shard `i` lives on `shard_nodes[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRef {
    pub blob: u128,
    pub layout: ShardLayout,
    pub shard_nodes: Vec<u64>,
    /// Shard indexes that were not durable when the version was committed (or were found
    /// corrupt later): the repair worker rebuilds them, then clears them through
    /// `MarkShardsRepaired`.
    pub missing: Vec<u8>,
}

impl ErasureRef {
    pub fn validate(&self) -> Result<(), ObjectError> {
        self.layout.validate()?;
        let total = self.layout.total_shards();
        if self.shard_nodes.len() != total {
            return Err(ObjectError::invalid(format!(
                "{} shard locations for a layout of {total} shards",
                self.shard_nodes.len()
            )));
        }
        if self.missing.iter().any(|&i| usize::from(i) >= total) {
            return Err(ObjectError::invalid(
                "a missing shard index is out of range",
            ));
        }
        let mut sorted = self.missing.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.missing.len() {
            return Err(ObjectError::invalid("a missing shard index is repeated"));
        }
        // Fewer than `data_shards` durable shards could not be read back: never commit that.
        if total - self.missing.len() < usize::from(self.layout.data_shards) {
            return Err(ObjectError::invalid(
                "fewer durable shards than data shards: the data could not be read back",
            ));
        }
        Ok(())
    }
}

/// One part of a completed multipart object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRef {
    pub part_number: u16,
    pub size_bytes: u64,
    pub etag: ETag,
    /// `Inline` or `Erasure`, never `Parts`.
    pub data: DataRef,
}

/// Where the bytes of an object version (or of an uploaded part) are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataRef {
    /// Small objects live in the metadata, replicated by Raft.
    Inline(Vec<u8>),
    Erasure(ErasureRef),
    /// A completed multipart upload: its parts, in order, each with its own data.
    Parts(Vec<PartRef>),
}

impl DataRef {
    pub fn empty() -> Self {
        DataRef::Inline(Vec::new())
    }

    /// Check the reference is well-formed and describes `size_bytes` bytes.
    pub fn validate(&self, size_bytes: u64) -> Result<(), ObjectError> {
        match self {
            DataRef::Inline(bytes) => {
                if bytes.len() as u64 != size_bytes {
                    return Err(ObjectError::invalid(format!(
                        "inline data of {} bytes for an object of {size_bytes} bytes",
                        bytes.len()
                    )));
                }
                Ok(())
            }
            DataRef::Erasure(erasure) => erasure.validate(),
            DataRef::Parts(parts) => {
                let mut total: u64 = 0;
                let mut previous = 0u16;
                for part in parts {
                    if part.part_number <= previous {
                        return Err(ObjectError::InvalidPartOrder);
                    }
                    previous = part.part_number;
                    if matches!(part.data, DataRef::Parts(_)) {
                        return Err(ObjectError::invalid("a part cannot itself have parts"));
                    }
                    part.data.validate(part.size_bytes)?;
                    total = total.saturating_add(part.size_bytes);
                }
                if total != size_bytes {
                    return Err(ObjectError::invalid(format!(
                        "parts of {total} bytes for an object of {size_bytes} bytes"
                    )));
                }
                Ok(())
            }
        }
    }

    /// Every erasure-coded blob this reference points to (for garbage collection).
    pub fn blobs(&self) -> Vec<u128> {
        match self {
            DataRef::Inline(_) => Vec::new(),
            DataRef::Erasure(e) => vec![e.blob],
            DataRef::Parts(parts) => parts.iter().flat_map(|p| p.data.blobs()).collect(),
        }
    }

    /// Whether anything outside the metadata has to be collected when this is dropped.
    pub fn holds_shards(&self) -> bool {
        !self.blobs().is_empty()
    }

    /// The erasure reference of `blob`, wherever it is in this reference.
    pub fn erasure_mut(&mut self, blob: u128) -> Option<&mut ErasureRef> {
        match self {
            DataRef::Inline(_) => None,
            DataRef::Erasure(e) => (e.blob == blob).then_some(e),
            DataRef::Parts(parts) => parts.iter_mut().find_map(|p| p.data.erasure_mut(blob)),
        }
    }
}

/// One version of an object: its data or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectVersion {
    pub key: ObjectKey,
    pub version_id: VersionId,
    pub is_delete_marker: bool,
    pub size_bytes: u64,
    pub etag: Option<ETag>,
    pub last_modified_ms: u64,
    pub headers: ObjectHeaders,
    pub user_metadata: UserMetadata,
    pub tags: TagSet,
    pub checksum: Option<Checksum>,
    pub storage_class: StorageClass,
    pub data: DataRef,
}

impl ObjectVersion {
    pub fn delete_marker(key: ObjectKey, version_id: VersionId, now_ms: u64) -> Self {
        ObjectVersion {
            key,
            version_id,
            is_delete_marker: true,
            size_bytes: 0,
            etag: None,
            last_modified_ms: now_ms,
            headers: ObjectHeaders::default(),
            user_metadata: UserMetadata::new(),
            tags: TagSet::default(),
            checksum: None,
            storage_class: StorageClass::Standard,
            data: DataRef::empty(),
        }
    }

    pub fn summary(&self, is_latest: bool) -> VersionSummary {
        VersionSummary {
            key: self.key.clone(),
            version_id: self.version_id.clone(),
            is_latest,
            is_delete_marker: self.is_delete_marker,
            size_bytes: self.size_bytes,
            etag: self.etag.clone(),
            last_modified_ms: self.last_modified_ms,
            storage_class: self.storage_class,
            checksum_algorithm: self.checksum.as_ref().map(|c| c.algorithm),
        }
    }
}

/// What a PUT (or a completed upload) supplies; the state adds key, version id and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewObject {
    pub size_bytes: u64,
    pub etag: ETag,
    pub headers: ObjectHeaders,
    pub user_metadata: UserMetadata,
    pub tags: TagSet,
    pub checksum: Option<Checksum>,
    pub storage_class: StorageClass,
    pub data: DataRef,
}

impl NewObject {
    pub fn validate(&self) -> Result<(), ObjectError> {
        validate_user_metadata(&self.user_metadata)?;
        self.tags.validate(MAX_OBJECT_TAGS)?;
        if let Some(checksum) = &self.checksum {
            checksum.validate()?;
        }
        self.data.validate(self.size_bytes)
    }
}

/// A row of ListObjects (no data, no metadata: a listing of 1000 keys stays small).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectSummary {
    pub key: ObjectKey,
    pub size_bytes: u64,
    pub etag: Option<ETag>,
    pub last_modified_ms: u64,
    pub storage_class: StorageClass,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

/// A row of ListObjectVersions: a version or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSummary {
    pub key: ObjectKey,
    pub version_id: VersionId,
    pub is_latest: bool,
    pub is_delete_marker: bool,
    pub size_bytes: u64,
    pub etag: Option<ETag>,
    pub last_modified_ms: u64,
    pub storage_class: StorageClass,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

/// A bucket as its data group keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: BucketName,
    pub owner: String,
    pub created_ms: u64,
    pub versioning: VersioningState,
    pub tags: TagSet,
}

/// A multipart upload in progress (its parts are stored beside it, one row each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartUpload {
    pub upload_id: UploadId,
    pub key: ObjectKey,
    pub initiated_ms: u64,
    pub storage_class: StorageClass,
    pub headers: ObjectHeaders,
    pub user_metadata: UserMetadata,
    pub tags: TagSet,
    /// The algorithm named at CreateMultipartUpload, which every part must carry.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub part_number: u16,
    pub etag: ETag,
    pub size_bytes: u64,
    pub uploaded_ms: u64,
    pub checksum: Option<Checksum>,
    /// `Inline` or `Erasure`.
    pub data: DataRef,
}

pub fn validate_part_number(part_number: u16) -> Result<(), ObjectError> {
    if (1..=MAX_PART_NUMBER).contains(&part_number) {
        Ok(())
    } else {
        Err(ObjectError::invalid(format!(
            "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket.logs", "a1b", "123", &"a".repeat(63)] {
            assert!(BucketName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "-abc",
            "abc-",
            ".abc",
            "a..b",
            "a_b",
            "192.168.5.4",
            "xn--abc",
            "data-s3alias",
            "data--ol-s3",
            "sthree-x",
            "a b",
            "",
        ] {
            let err = BucketName::parse(bad).unwrap_err();
            assert_eq!(err.code(), "InvalidBucketName", "{bad}");
            assert_eq!(err.http_status(), 400);
        }
        // Four numbers that are not an address shape stay legal only with other text.
        assert!(BucketName::parse("1.2.3.4a").is_ok());
    }

    #[test]
    fn decoding_validates_like_parsing() {
        let bytes = crate::store::encode(&"UPPER".to_string());
        assert!(crate::raft::codec::decode::<BucketName>(&bytes).is_err());
        let bytes = crate::store::encode(&"fine-name".to_string());
        assert_eq!(
            crate::raft::codec::decode::<BucketName>(&bytes)
                .unwrap()
                .as_str(),
            "fine-name"
        );
        let long = crate::store::encode(&"k".repeat(1025));
        assert!(crate::raft::codec::decode::<ObjectKey>(&long).is_err());
    }

    #[test]
    fn keys_are_one_to_1024_bytes() {
        assert!(ObjectKey::parse(&"é".repeat(512)).is_ok());
        assert_eq!(
            ObjectKey::parse(&"é".repeat(513)).unwrap_err().code(),
            "KeyTooLongError"
        );
        assert_eq!(ObjectKey::parse("").unwrap_err().code(), "InvalidArgument");
        assert!(ObjectKey::parse("with\0nul").is_ok());
        assert!(ObjectKey::from_bytes(&[0xff]).is_err());
    }

    #[test]
    fn generated_version_ids_sort_newest_first() {
        let older = VersionId::generate(1_000, u64::MAX);
        let newer = VersionId::generate(1_001, 0);
        assert!(newer < older);
        assert_eq!(VersionId::parse(older.as_str()).unwrap(), older);
        assert!(VersionId::parse("null").unwrap().is_null());
        assert_eq!(
            VersionId::parse("not-an-id").unwrap_err().code(),
            "InvalidArgument"
        );
        let first = UploadId::generate(5, 9);
        assert!(first < UploadId::generate(6, 0));
        assert_eq!(UploadId::parse("zz").unwrap_err().code(), "NoSuchUpload");
    }

    #[test]
    fn storage_classes_parse_and_unknown_ones_are_refused() {
        for class in StorageClass::ALL {
            assert_eq!(StorageClass::parse(class.as_str()).unwrap(), class);
        }
        let err = StorageClass::parse("FAST").unwrap_err();
        assert_eq!(err.code(), "InvalidStorageClass");
        assert_eq!(err.http_status(), 400);
    }

    #[test]
    fn etags_strip_quotes_and_build_the_multipart_form() {
        let tag = ETag::parse("\"9e107d9d372bb6826bd81d3542a419d6\"").unwrap();
        assert_eq!(tag.as_str(), "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(tag.quoted(), "\"9e107d9d372bb6826bd81d3542a419d6\"");
        let md5 = tag.md5().unwrap();
        assert_eq!(md5[0], 0x9e);
        assert_eq!(ETag::from_md5(&md5), tag);
        // md5 of the empty input, the ETag of an empty object.
        let empty = ETag::parse("d41d8cd98f00b204e9800998ecf8427e").unwrap();
        let multi = ETag::multipart(&[empty.md5().unwrap()]);
        // md5(md5("")) = 59adb24ef3cdbe0297f05b395827453f
        assert_eq!(multi.as_str(), "59adb24ef3cdbe0297f05b395827453f-1");
        assert!(multi.md5().is_none());
        assert!(ETag::parse("\"\"").is_err());
        assert!(ETag::parse("a\"b").is_err());
    }

    #[test]
    fn checksums_must_be_the_right_length() {
        assert!(Checksum::new(ChecksumAlgorithm::Crc32, "AAAAAA==").is_ok());
        assert!(Checksum::new(ChecksumAlgorithm::Crc32, "AAAA").is_err());
        assert!(Checksum::new(
            ChecksumAlgorithm::Sha256,
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        )
        .is_ok());
        assert_eq!(
            ChecksumAlgorithm::parse("crc32c").unwrap(),
            ChecksumAlgorithm::Crc32c
        );
    }

    #[test]
    fn tags_are_limited() {
        let pairs = (0..11).map(|i| (format!("k{i}"), "v".to_string()));
        assert_eq!(
            TagSet::from_pairs(pairs.clone(), MAX_OBJECT_TAGS)
                .unwrap_err()
                .code(),
            "InvalidTag"
        );
        assert!(TagSet::from_pairs(pairs, MAX_BUCKET_TAGS).is_ok());
        let dup = vec![("a".to_string(), "1".to_string()), ("a".into(), "2".into())];
        assert!(TagSet::from_pairs(dup, 10).is_err());
        let long = vec![("k".to_string(), "v".repeat(257))];
        assert!(TagSet::from_pairs(long, 10).is_err());
    }

    #[test]
    fn data_refs_are_checked_against_their_size() {
        assert!(DataRef::Inline(vec![1, 2]).validate(2).is_ok());
        assert!(DataRef::Inline(vec![1, 2]).validate(3).is_err());
        let erasure = |missing: Vec<u8>| {
            DataRef::Erasure(ErasureRef {
                blob: 7,
                layout: ShardLayout {
                    data_shards: 4,
                    parity_shards: 2,
                    stripe_bytes: 1 << 20,
                },
                shard_nodes: vec![1, 2, 3, 4, 5, 6],
                missing,
            })
        };
        assert!(erasure(vec![]).validate(10).is_ok());
        assert!(erasure(vec![0, 5]).validate(10).is_ok());
        assert!(erasure(vec![0, 1, 2]).validate(10).is_err());
        assert!(erasure(vec![6]).validate(10).is_err());
        assert!(erasure(vec![1, 1]).validate(10).is_err());
        let parts = DataRef::Parts(vec![
            PartRef {
                part_number: 1,
                size_bytes: 10,
                etag: ETag::parse("aa").unwrap(),
                data: erasure(vec![]),
            },
            PartRef {
                part_number: 2,
                size_bytes: 1,
                etag: ETag::parse("bb").unwrap(),
                data: DataRef::Inline(vec![9]),
            },
        ]);
        assert!(parts.validate(11).is_ok());
        assert!(parts.validate(12).is_err());
        assert_eq!(parts.blobs(), vec![7]);
    }

    #[test]
    fn every_error_has_a_code_and_a_status() {
        let errors = [
            ObjectError::NoSuchBucket("b".into()),
            ObjectError::NoSuchKey {
                delete_marker: None,
            },
            ObjectError::NoSuchVersion,
            ObjectError::BucketNotEmpty,
            ObjectError::BucketAlreadyOwnedByYou,
            ObjectError::BucketAlreadyExists,
            ObjectError::PreconditionFailed,
            ObjectError::MethodNotAllowed {
                version_id: VersionId::null(),
                last_modified_ms: 0,
            },
            ObjectError::OperationAborted("x".into()),
        ];
        let statuses: Vec<u16> = errors.iter().map(|e| e.http_status()).collect();
        assert_eq!(statuses, [404, 404, 404, 409, 409, 409, 412, 405, 409]);
        assert_eq!(ObjectError::MalformedXml("x".into()).code(), "MalformedXML");
    }
}
