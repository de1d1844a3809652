-- Long-term facts about a user ("allergic to peanuts"). They survive clearing
-- the conversation. Search is per user and exact: the B-tree on user_id narrows
-- to one user's rows, then distances are computed for those rows only.
CREATE TABLE memories (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    kind       text NOT NULL DEFAULT 'fact',
    content    text NOT NULL,
    embedding  vector(384) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, content)
);
