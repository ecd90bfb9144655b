-- The outbox of committed chat events (design.md decision 12): a change writes its events in
-- its own transaction, so a rolled-back change has none and a committed one never loses them.
-- Dispatchers (Event Grid webhooks, the event log and its stream, realtime push) read them in
-- `sequence` order. AUTOINCREMENT: a sequence number is never reused, even after a reset, so a
-- stream resumed with Last-Event-ID cannot be handed a different event under an old number.
CREATE TABLE events (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Microsoft.Communication.<suffix>
    type TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    -- The recipient of a user-level event; NULL for a thread-level one.
    recipient TEXT,
    created_at INTEGER NOT NULL,
    -- The event in the Event Grid schema, as every subscription receives it (JSON); for a
    -- user-level event, only what differs from its thread-level event (id, subject,
    -- eventType, the recipient), merged over that event's envelope when read. A change in a
    -- thread of 250 fans out to 250 user-level events: writing each in full made adding a
    -- participant to a large thread ten times slower (bench/README.md).
    envelope TEXT NOT NULL,
    -- The sequence of the thread-level event a user-level one shares its data with.
    origin INTEGER
);

-- No secondary indexes: every dispatcher reads by sequence (the primary key), and the log's
-- filters (type, thread) are for people and tests, which can afford a scan; an index costs
-- every chat write an entry per event (a send in a thread of two writes two events).
