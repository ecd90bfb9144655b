//! The api-version tables: which versions the emulator serves and which wire features each one
//! has. Adding a version is adding a row here; handlers ask the row, never compare strings.

/// What one Chat api-version puts on the wire (see the specs in `openapi/` and
/// `api-contract.md` §9 for where each field first appears).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatVersion {
    /// The `api-version` value.
    pub name: &'static str,
    /// Message `metadata` (send, get, update): 2021-09-07 and later.
    pub message_metadata: bool,
    /// `ChatMessageContent.attachments` in responses: 2023-11-07 and later.
    pub attachments: bool,
    /// Thread `metadata` and `retentionPolicy`, participant `metadata`: 2024-03-15-preview and
    /// 2025-03-15.
    pub thread_metadata: bool,
    /// Retention policy kind `none` (2025-03-15; the preview knows only `threadCreationDate`).
    pub retention_none: bool,
    /// Image upload/view/delete and `attachments` in send/update requests: 2024-03-15-preview.
    pub images: bool,
    /// The 2020 preview surface (`members`, `readreceipts`, 207 multi-status, string
    /// identifiers, `ThreadActivity/*` messages), served by `api::preview2`.
    pub legacy: bool,
}

/// The api-version of the 2020 preview surface (`api::preview2`).
pub const PREVIEW2: &str = "2020-09-21-preview2";

const BASE: ChatVersion = ChatVersion {
    name: "",
    message_metadata: false,
    attachments: false,
    thread_metadata: false,
    retention_none: false,
    images: false,
    legacy: false,
};

/// Chat versions served, oldest first. The Python SDK 1.3.0 sends 2024-03-07, the JS SDK 1.6.0
/// sends 2025-03-15.
pub const CHAT_VERSIONS: &[ChatVersion] = &[
    // What azure-communication-chat 1.0.0b2 (2020) speaks; served by `api::preview2`.
    ChatVersion {
        name: PREVIEW2,
        legacy: true,
        ..BASE
    },
    ChatVersion {
        name: "2021-03-07",
        ..BASE
    },
    ChatVersion {
        name: "2021-09-07",
        message_metadata: true,
        ..BASE
    },
    ChatVersion {
        name: "2023-11-07",
        message_metadata: true,
        attachments: true,
        ..BASE
    },
    ChatVersion {
        name: "2024-03-07",
        message_metadata: true,
        attachments: true,
        ..BASE
    },
    ChatVersion {
        name: "2024-03-15-preview",
        message_metadata: true,
        attachments: true,
        thread_metadata: true,
        images: true,
        ..BASE
    },
    ChatVersion {
        name: "2025-03-15",
        message_metadata: true,
        attachments: true,
        thread_metadata: true,
        retention_none: true,
        ..BASE
    },
];

/// What one Identity api-version offers. The core operations (create, token, revoke, delete)
/// are the same in all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityVersion {
    /// The `api-version` value.
    pub name: &'static str,
    /// Scopes `chat.join`, `chat.join.limited`, `voip.join` (2023-10-01 and later; before, only
    /// `chat` and `voip`).
    pub join_scopes: bool,
    /// `GET /identities/{id}` (2025-06-30).
    pub get_identity: bool,
    /// The 2020 preview surface of azure-communication-administration 1.0.0b4: create answers
    /// 200 `{id}`, tokens come from `POST /identities/{id}/token`, revocation is
    /// `PATCH /identities/{id}`.
    pub legacy: bool,
}

const fn identity(name: &'static str, join_scopes: bool, get_identity: bool) -> IdentityVersion {
    IdentityVersion {
        name,
        join_scopes,
        get_identity,
        legacy: false,
    }
}

/// Identity versions served, oldest first. Both identity SDKs send 2023-10-01.
pub const IDENTITY_VERSIONS: &[IdentityVersion] = &[
    IdentityVersion {
        legacy: true,
        ..identity("2020-07-20-preview2", false, false)
    },
    identity("2021-03-07", false, false),
    identity("2022-06-01", false, false),
    identity("2022-10-01", false, false),
    identity("2023-10-01", true, false),
    identity("2025-06-30", true, true),
];

/// The newest stable Chat version (what `--loose` serves unknown versions as).
pub fn newest_chat() -> &'static ChatVersion {
    CHAT_VERSIONS
        .iter()
        .rev()
        .find(|v| !v.name.contains("preview"))
        .unwrap_or(&CHAT_VERSIONS[0])
}

/// The newest stable Identity version.
pub fn newest_identity() -> &'static IdentityVersion {
    IDENTITY_VERSIONS
        .iter()
        .rev()
        .find(|v| !v.name.contains("preview"))
        .unwrap_or(&IDENTITY_VERSIONS[0])
}

/// Looks up a Chat version by its exact name.
pub fn chat_version(name: &str) -> Option<&'static ChatVersion> {
    CHAT_VERSIONS.iter().find(|v| v.name == name)
}

/// Looks up an Identity version by its exact name.
pub fn identity_version(name: &str) -> Option<&'static IdentityVersion> {
    IDENTITY_VERSIONS.iter().find(|v| v.name == name)
}

/// The `api-supported-versions` header value for a list of version names.
pub fn supported_header(names: impl Iterator<Item = &'static str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_grow_with_versions() {
        let old = chat_version("2021-03-07").expect("known");
        assert!(!old.message_metadata && !old.thread_metadata);
        let python = chat_version("2024-03-07").expect("known");
        assert!(python.message_metadata && python.attachments && !python.thread_metadata);
        let js = chat_version("2025-03-15").expect("known");
        assert!(js.thread_metadata && js.attachments && js.retention_none && !js.images);
        let preview = chat_version("2024-03-15-preview").expect("known");
        assert!(preview.images && preview.thread_metadata && !preview.retention_none);
        assert!(chat_version("2099-01-01").is_none());
        assert_eq!(newest_chat().name, "2025-03-15");
        assert_eq!(newest_identity().name, "2025-06-30");
    }
}
