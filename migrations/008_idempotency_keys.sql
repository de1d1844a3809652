-- Stored first responses for POSTs sent with an Idempotency-Key, shared by
-- every instance. Scoped by the caller's API key (hashed) and the user.
CREATE TABLE idempotency_keys (
    api_key_hash  bytea NOT NULL,
    user_id       text NOT NULL,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  bytea NOT NULL,
    status        smallint,
    response_body jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_hash, user_id, key)
);
CREATE INDEX idx_idempotency_keys_created ON idempotency_keys (created_at);
