-- Chat + Identity state of the one emulated resource.
-- Instants are INTEGER microseconds since the Unix epoch; JSON columns hold objects as text.

CREATE TABLE identities (
    id                   TEXT PRIMARY KEY,          -- 8:acs:<resourceId>_<uuid>
    created_at           INTEGER NOT NULL,
    deleted_at           INTEGER,                   -- kept so that its tokens stay refused
    tokens_revoked_at    INTEGER NOT NULL DEFAULT 0, -- tokens issued at or before are refused
    last_token_issued_at INTEGER
) STRICT;

CREATE TABLE threads (
    id                TEXT PRIMARY KEY,             -- 19:<hex>@thread.v2
    topic             TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    created_by        TEXT NOT NULL,
    deleted_at        INTEGER,                      -- soft delete: still listed with deletedOn
    metadata          TEXT NOT NULL DEFAULT '{}',
    retention_policy  TEXT,                         -- NULL: never set
    last_message_at   INTEGER NOT NULL,
    last_sequence_id  INTEGER NOT NULL DEFAULT 0,
    last_message_id   INTEGER NOT NULL DEFAULT 0,
    next_participant  INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE participants (
    thread_id          TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    user_id            TEXT NOT NULL,
    display_name       TEXT,
    share_history_time INTEGER NOT NULL DEFAULT 0,
    metadata           TEXT NOT NULL DEFAULT '{}',
    position           INTEGER NOT NULL,            -- order of joining, for skip paging
    PRIMARY KEY (thread_id, user_id)
) STRICT;
CREATE INDEX participants_by_user ON participants(user_id);
CREATE UNIQUE INDEX participants_by_position ON participants(thread_id, position);

CREATE TABLE messages (
    thread_id           TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    id                  INTEGER NOT NULL,           -- epoch milliseconds, increasing per thread
    sequence_id         INTEGER NOT NULL,
    type                TEXT NOT NULL,
    sender_id           TEXT,
    sender_display_name TEXT,
    content             TEXT NOT NULL,              -- stored content, see store::messages
    metadata            TEXT NOT NULL DEFAULT '{}',
    created_at          INTEGER NOT NULL,
    version             INTEGER NOT NULL,
    edited_at           INTEGER,
    deleted_at          INTEGER,
    PRIMARY KEY (thread_id, id)
) STRICT;
CREATE UNIQUE INDEX messages_by_sequence ON messages(thread_id, sequence_id);

CREATE TABLE read_receipts (
    thread_id  TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    read_at    INTEGER NOT NULL,                 -- rowid order (first receipt) is the list order
    PRIMARY KEY (thread_id, user_id)
) STRICT;

CREATE TABLE idempotency (
    caller_id    TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    thread_id    TEXT NOT NULL,
    body         TEXT NOT NULL,                     -- the 201 body first sent
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (caller_id, request_id)
) STRICT;
