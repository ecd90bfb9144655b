//! The documented limits of chat (service limits page and the spec), and the metadata
//! merge-patch they apply to.

use std::collections::BTreeMap;

use crate::error::{ApiError, ApiResult};
use crate::store::Metadata;

/// "approximately 28 KB" per message (service limits).
pub const MAX_MESSAGE_BYTES: usize = 28 * 1024;
/// Participants per thread (service limits).
pub const MAX_PARTICIPANTS: usize = 250;
/// Participants per create or add request (service limits).
pub const MAX_PARTICIPANT_BATCH: usize = 200;
/// "The total size of all metadata pairs can be up to 1KB" (spec).
pub const MAX_METADATA_BYTES: usize = 1024;

/// A merge-patch map: a key with `null` removes it.
pub type MetadataPatch = BTreeMap<String, Option<String>>;

/// The "approximately 28 KB" message limit, in UTF-8 bytes.
pub(crate) fn check_content_size(content: &str) -> ApiResult<()> {
    if content.len() > MAX_MESSAGE_BYTES {
        return Err(ApiError::bad_request(format!(
            "The message content is {} bytes; the limit is {MAX_MESSAGE_BYTES} bytes.",
            content.len()
        )));
    }
    Ok(())
}

/// Checks the 1 KB metadata limit (keys and values, UTF-8 bytes).
pub(crate) fn check_metadata_size(metadata: &Metadata) -> ApiResult<()> {
    let size: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_METADATA_BYTES {
        return Err(ApiError::bad_request(format!(
            "The total size of metadata ({size} bytes) exceeds the limit of {MAX_METADATA_BYTES} bytes."
        )));
    }
    Ok(())
}

/// `current` with a JSON merge patch (RFC 7396) of string values applied (`null` removes a
/// key), checked against the metadata limit.
pub(super) fn merged_metadata(mut current: Metadata, patch: &MetadataPatch) -> ApiResult<Metadata> {
    for (key, value) in patch {
        match value {
            Some(v) => {
                current.insert(key.clone(), v.clone());
            }
            None => {
                current.remove(key);
            }
        }
    }
    check_metadata_size(&current)?;
    Ok(current)
}

/// Checks the per-request participant limit (create and add alike).
pub(super) fn check_participant_batch(count: usize) -> ApiResult<()> {
    if count > MAX_PARTICIPANT_BATCH {
        return Err(ApiError::bad_request(format!(
            "At most {MAX_PARTICIPANT_BATCH} participants can be given in one request."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_patch_sets_and_removes_keys_and_is_checked_after_merging() {
        let current = Metadata::from([("a".to_owned(), "1".to_owned())]);
        let patch = MetadataPatch::from([
            ("a".to_owned(), None),
            ("b".to_owned(), Some("2".to_owned())),
        ]);
        let merged = merged_metadata(current, &patch).expect("small");
        assert_eq!(merged, Metadata::from([("b".to_owned(), "2".to_owned())]));

        // 1020 bytes stored + 10 patched = over the limit, although each alone is under it.
        let big = Metadata::from([("k".to_owned(), "v".repeat(1019))]);
        let patch = MetadataPatch::from([("other".to_owned(), Some("12345".to_owned()))]);
        assert!(merged_metadata(big, &patch).is_err());
    }
}
