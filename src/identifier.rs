//! Identifiers on the wire: ACS user ids, thread ids, and `CommunicationIdentifierModel` in both
//! directions. Pure functions; no storage.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// A new ACS user id for the resource: `8:acs:<resourceId>_<uuid>`, with exactly one `_`
/// (the SDKs parse three `_`-separated parts as a Teams extension user).
pub fn new_user_id(resource_id: &str) -> String {
    format!("8:acs:{resource_id}_{}", uuid::Uuid::new_v4())
}

/// A new thread id in the service's shape `19:<32 hex>@thread.v2`. The hex is a version 7
/// UUID, which starts with the time: threads created together sort together, so the indexes
/// keyed by thread (threads, participants, messages) take new threads at their end instead of
/// at random places. Measured with the benchmark's create thread: the random v4 ids dirtied
/// about seven index pages of their own per thread, written to the WAL and again to the
/// database file. Clients treat the id as opaque.
pub fn new_thread_id() -> String {
    format!("19:{}@thread.v2", uuid::Uuid::now_v7().simple())
}

/// Checks that a path segment can be a thread id. The service answers 400 for ids that are not
/// thread ids at all (recorded: `DELETE /chat/threads/invalid_chat_thread_id` → 400) and 404 for
/// well-formed ids that do not exist.
pub fn check_thread_id(id: &str) -> ApiResult<()> {
    if is_thread_id(id) {
        Ok(())
    } else {
        Err(ApiError::BadRequest {
            code: "BadRequest",
            message: format!("Value for ThreadId ({id}) is not valid."),
        })
    }
}

/// Whether `id` has the shape of a thread id (`check_thread_id` without the error).
pub fn is_thread_id(id: &str) -> bool {
    id.len() <= 256
        && id.starts_with("19:")
        && id.contains("@thread")
        // Characters that would break the id's place in a path or a nextLink.
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '%'))
}

/// Parses a message id path segment: message ids are decimal epoch milliseconds. The service's
/// wording for anything else (recorded): "Value for MessageId (…) is not valid.".
pub fn parse_message_id(id: &str) -> ApiResult<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::BadRequest {
            code: "BadRequest",
            message: format!("Value for MessageId ({id}) is not valid."),
        })
}

/// What a user id says about itself.
#[derive(Debug, PartialEq, Eq)]
pub enum UserIdKind {
    /// An ACS user of this emulated resource.
    OwnResource,
    /// A well-formed ACS user of another resource.
    OtherResource,
}

/// Classifies a raw id as an ACS communication user of `resource_id` or of another resource;
/// anything else is not an identifier this emulator can place in a thread (400, with the
/// service's recorded wording "Identifier format is invalid (…).").
pub fn classify_user_id(raw_id: &str, resource_id: &str) -> ApiResult<UserIdKind> {
    let invalid = || ApiError::BadRequest {
        code: "BadRequest",
        message: format!("Identifier format is invalid ({raw_id})."),
    };
    let rest = raw_id.strip_prefix("8:acs:").ok_or_else(invalid)?;
    let (resource, user) = rest.split_once('_').ok_or_else(invalid)?;
    let looks_like_guid =
        |s: &str| s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !looks_like_guid(resource) || user.is_empty() || user.contains('_') || user.len() > 128 {
        return Err(invalid());
    }
    if resource.eq_ignore_ascii_case(resource_id) {
        Ok(UserIdKind::OwnResource)
    } else {
        Ok(UserIdKind::OtherResource)
    }
}

/// `CommunicationIdentifierModel` as clients send it: usually `rawId` plus one sub-object and no
/// `kind` (JS `serializeCommunicationIdentifier`), sometimes only the sub-object.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationIdentifierModel {
    pub raw_id: Option<String>,
    pub communication_user: Option<CommunicationUserIdentifierModel>,
    pub phone_number: Option<Value>,
    pub microsoft_teams_user: Option<Value>,
    pub microsoft_teams_app: Option<Value>,
}

/// `CommunicationUserIdentifierModel`.
#[derive(Debug, Clone, Deserialize)]
pub struct CommunicationUserIdentifierModel {
    pub id: String,
}

impl CommunicationIdentifierModel {
    /// The model of a bare raw id (the 2020 preview sends ids as plain strings).
    pub fn from_raw_id(raw_id: &str) -> Self {
        CommunicationIdentifierModel {
            raw_id: Some(raw_id.to_owned()),
            communication_user: None,
            phone_number: None,
            microsoft_teams_user: None,
            microsoft_teams_app: None,
        }
    }

    /// The raw id this identifier names, for an ACS communication user. Chat threads of this
    /// emulator hold ACS users only; phone numbers and Teams identities (interop) are refused.
    pub fn communication_user_raw_id(&self) -> ApiResult<String> {
        let from_sub = self.communication_user.as_ref().map(|u| u.id.clone());
        let raw = match (&self.raw_id, from_sub) {
            (Some(raw), Some(sub)) if *raw != sub => {
                return Err(ApiError::bad_request(format!(
                    "The rawId ({raw}) does not match communicationUser.id ({sub})."
                )));
            }
            (_, Some(sub)) => sub,
            (Some(raw), None)
                if self.phone_number.is_none()
                    && self.microsoft_teams_user.is_none()
                    && self.microsoft_teams_app.is_none() =>
            {
                raw.clone()
            }
            _ => {
                let shown = self
                    .raw_id
                    .clone()
                    .unwrap_or_else(|| "<no rawId>".to_owned());
                return Err(ApiError::BadRequest {
                    code: "BadRequest",
                    message: format!(
                        "Identifier format is invalid ({shown}): the emulator's chat threads hold Azure Communication Services users only."
                    ),
                });
            }
        };
        Ok(raw)
    }
}

/// Renders an ACS user id as a response `CommunicationIdentifierModel`: `rawId` and
/// `communicationUser`. No `kind`: although Common 2022-07-13 and later call it "required in
/// responses", the service left it out in every recording up to 2024-06-05-preview, and the SDKs
/// infer it from the sub-object.
pub fn identifier_json(raw_id: &str) -> Value {
    serde_json::to_value(UserIdentifier(raw_id)).unwrap_or(Value::Null)
}

/// The `CommunicationIdentifierModel` of an ACS user (`rawId` and `communicationUser`), written
/// straight to the serializer: messages render one per message and participant, and building
/// a `Value` for each was a visible cost of listing. `Id` is the raw id, borrowed or owned.
#[derive(Debug)]
pub struct UserIdentifier<Id>(pub Id);

impl<Id: AsRef<str>> serde::Serialize for UserIdentifier<Id> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        #[derive(serde::Serialize)]
        struct User<'a> {
            id: &'a str,
        }
        let id = self.0.as_ref();
        // Keys in sorted order, as a `Value` map writes them.
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("communicationUser", &User { id })?;
        map.serialize_entry("rawId", id)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOURCE: &str = "a1b2c3d4-0000-4000-8000-00000000ac5e";

    #[test]
    fn user_ids_have_one_underscore_and_the_resource() {
        let id = new_user_id(RESOURCE);
        assert_eq!(id.matches('_').count(), 1);
        assert_eq!(
            classify_user_id(&id, RESOURCE).ok(),
            Some(UserIdKind::OwnResource)
        );
    }

    #[test]
    fn classifies_foreign_and_invalid_ids() {
        let other =
            "8:acs:357e39d2-a29a-4bf6-88cc-fda0afc2c0ed_0000000c-005a-9fcc-ac00-343a0d007710";
        assert_eq!(
            classify_user_id(other, RESOURCE).ok(),
            Some(UserIdKind::OtherResource)
        );
        assert!(classify_user_id("8:acs:invalidUserId", RESOURCE).is_err());
        assert!(classify_user_id("4:+14255550123", RESOURCE).is_err());
    }

    #[test]
    fn thread_ids_round_trip_the_check() {
        assert!(check_thread_id(&new_thread_id()).is_ok());
        assert!(check_thread_id("invalid_chat_thread_id").is_err());
    }

    #[test]
    fn message_ids_are_positive_integers() {
        assert_eq!(
            parse_message_id("1593107077683").ok(),
            Some(1_593_107_077_683)
        );
        assert!(parse_message_id("invalid_chat_message_id").is_err());
        assert!(parse_message_id("-5").is_err());
    }
}
