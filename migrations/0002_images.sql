-- Images uploaded to a thread (Chat 2024-03-15-preview), referenced by message attachments.
CREATE TABLE images (
    thread_id    TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    name         TEXT,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (thread_id, id)
) STRICT;
