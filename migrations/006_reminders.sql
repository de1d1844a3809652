-- next_trigger_at is what the scheduler polls; daily reminders move it to the
-- next local occurrence after each firing, one-time reminders deactivate.
CREATE TABLE reminders (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    kind              text NOT NULL CHECK (kind IN ('daily', 'one_time')),
    message           text NOT NULL CHECK (length(message) BETWEEN 1 AND 1000),
    daily_time        time,
    trigger_time      timestamptz,
    timezone          text NOT NULL DEFAULT 'UTC',
    active            boolean NOT NULL DEFAULT true,
    next_trigger_at   timestamptz,
    last_triggered_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'daily' AND daily_time IS NOT NULL)
        OR (kind = 'one_time' AND trigger_time IS NOT NULL))
);

-- One row per firing. The unique key makes a second firing of the same
-- occurrence impossible, whatever the schedulers do.
CREATE TABLE reminder_completions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reminder_id   uuid NOT NULL REFERENCES reminders (id) ON DELETE CASCADE,
    user_id       text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    scheduled_for timestamptz NOT NULL,
    triggered_at  timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    webhook_status text NOT NULL DEFAULT 'none'
                  CHECK (webhook_status IN ('none', 'pending', 'delivered', 'failed')),
    UNIQUE (reminder_id, scheduled_for)
);
CREATE INDEX idx_reminder_completions_reminder ON reminder_completions (reminder_id, triggered_at DESC);
