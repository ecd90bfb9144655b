-- Identity 2025-06-30: an identity may carry the caller's own id (e.g. an email), unique per
-- resource; creating again with the same customId returns the same identity.
ALTER TABLE identities ADD COLUMN custom_id TEXT;
CREATE UNIQUE INDEX identities_by_custom_id ON identities(custom_id) WHERE custom_id IS NOT NULL;
