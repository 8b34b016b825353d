-- The single counter that orders every change: gapless, strictly increasing,
-- allocated under pg_advisory_xact_lock so commit order equals sequence order.
CREATE TABLE change_sequence (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_seq  bigint  NOT NULL CHECK (last_seq >= 0)
);
INSERT INTO change_sequence (singleton, last_seq) VALUES (true, 0);

-- Ad ids come from their own sequence: never reused, gaps allowed.
CREATE SEQUENCE ad_id_seq AS bigint START 1;

CREATE TABLE ads (
    id          bigint      PRIMARY KEY,
    title       text        NOT NULL,
    start_at    timestamptz NOT NULL,
    end_at      timestamptz NOT NULL CHECK (end_at > start_at),
    -- Canonical `conditions` JSON, exactly as the API returns it.
    conditions  jsonb       NOT NULL,
    -- Sequence number of the last change to this row.
    last_seq    bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- Set by DELETE: the API and the edges no longer see the ad.
    deleted_at  timestamptz
);
CREATE INDEX ads_live_end_at ON ads (end_at) WHERE deleted_at IS NULL;

-- Every change event, keyed by its sequence number; the relay publishes these
-- to the Redis Stream as entry `<seq>-0`.
CREATE TABLE outbox (
    seq         bigint      PRIMARY KEY,
    ad_id       bigint      NOT NULL,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- POST answers remembered by Idempotency-Key.
CREATE TABLE idempotency_keys (
    key            text        PRIMARY KEY,
    -- The request body as canonical JSON, to tell a retry from a reuse.
    request_json   text        NOT NULL,
    status         smallint    NOT NULL,
    response_body  bytea       NOT NULL,
    location       text,
    seq            bigint,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
