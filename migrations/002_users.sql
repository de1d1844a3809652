-- A user is an opaque id chosen by the client. Profile and preferences are
-- JSON objects validated by the API (typed known fields, unknown ones kept).
CREATE TABLE users (
    user_id     text PRIMARY KEY
                CHECK (user_id ~ '^[A-Za-z0-9_.:@-]{1,128}$'),
    profile     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(profile) = 'object'),
    preferences jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(preferences) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
