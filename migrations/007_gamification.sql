-- XP is a ledger: the level is derived from the sum. source_key makes each
-- award idempotent (a retried request cannot award twice).
CREATE TABLE xp_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    event_type text NOT NULL,
    xp         integer NOT NULL CHECK (xp > 0),
    source_key text NOT NULL,
    -- The user's calendar day of the action: streaks count these days.
    local_date date NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, source_key)
);

-- Running totals, updated in the same transaction as the ledger.
CREATE TABLE user_stats (
    user_id             text PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    total_xp            bigint NOT NULL DEFAULT 0,
    food_entries        bigint NOT NULL DEFAULT 0,
    reminders_completed bigint NOT NULL DEFAULT 0,
    chat_messages       bigint NOT NULL DEFAULT 0
);

CREATE TABLE streaks (
    user_id     text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    streak_type text NOT NULL CHECK (streak_type IN ('food_logging', 'reminders')),
    current     integer NOT NULL DEFAULT 0,
    best        integer NOT NULL DEFAULT 0,
    last_date   date,
    PRIMARY KEY (user_id, streak_type)
);

CREATE TABLE achievements (
    user_id        text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    achievement_id text NOT NULL,
    unlocked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, achievement_id)
);
