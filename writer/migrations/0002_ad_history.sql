-- Who changed what: one row per change, written in the change's own
-- transaction. Kept when the ad is deleted (and when the outbox is pruned).
CREATE TABLE ad_history (
    -- The change's sequence number (as in the outbox and the stream).
    seq       bigint      PRIMARY KEY,
    ad_id     bigint      NOT NULL,
    action    text        NOT NULL CHECK (action IN ('create', 'replace', 'delete')),
    -- The label of the token that made the change; NULL when tokens are off
    -- or the token has no label.
    by_label  text        CHECK (by_label IS NULL OR by_label ~ '^[A-Za-z0-9._-]{1,64}$'),
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ad_history_ad_id_seq ON ad_history (ad_id, seq);
