-- Event Grid webhook subscriptions (events.md §7) and the delivery state of each (event,
-- subscription) pair, so a delivery pending when the process dies happens after a restart
-- (at least once, events.md §5). Subscriptions are configuration, not chat state: a reset keeps
-- them (it clears the events and so their deliveries).
CREATE TABLE event_subscriptions (
    name TEXT PRIMARY KEY,
    -- The validated ARM properties (destination, filter, schema, retry policy) as JSON.
    definition TEXT NOT NULL,
    -- 'api' (PUT /_emulator/eventSubscriptions) or 'flag' (--event-webhook; replaced at start).
    origin TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- Every event up to this sequence number has been matched against the filter: a new
    -- subscription starts at the newest event of its creation, so it gets only later ones.
    position INTEGER NOT NULL
);

CREATE TABLE event_deliveries (
    subscription TEXT NOT NULL REFERENCES event_subscriptions (name) ON DELETE CASCADE,
    -- events.sequence; no foreign key: deleting events (reset, import) deletes these first.
    sequence INTEGER NOT NULL,
    -- 'pending' | 'retrying' | 'delivered' | 'deadLettered'
    state TEXT NOT NULL,
    -- Attempts made so far, as aeg-delivery-count of the next attempt.
    attempt_count INTEGER NOT NULL DEFAULT 0,
    -- [{"at": RFC 3339, "status": n} | {"at", "error": text}], oldest first.
    attempts TEXT NOT NULL DEFAULT '[]',
    -- Microseconds: when it was matched (the start of its time to live), when it is due.
    queued_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    PRIMARY KEY (subscription, sequence)
);

CREATE INDEX event_deliveries_by_sequence ON event_deliveries (sequence);
