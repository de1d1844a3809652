-- Chat messages, with an embedding per message for semantic recall.
-- The dimension is fixed here and must match `llm.embedding_dimensions`.
CREATE TABLE conversation_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
    content      text NOT NULL,
    message_type text NOT NULL DEFAULT 'text',
    metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
    embedding    vector(384),
    "timestamp"  timestamptz NOT NULL DEFAULT now()
);
