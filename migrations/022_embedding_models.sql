-- Which model made each vector. Vectors of two models are not comparable
-- (a cosine between them is noise), so search must never mix them: the
-- server refuses to start when memories or saved meals hold another model's
-- vectors than the configured one, and `health-agent memories reembed`
-- converts them. Rows written before this migration came from the hashed
-- n-gram embedder.
-- A constant default is recorded without rewriting the table (PostgreSQL
-- 11+). The service always names the model; the default only labels rows
-- written by hand (tools, tests) as the hashed embedder's.
ALTER TABLE memories ADD COLUMN embedding_model text NOT NULL DEFAULT 'hashed-ngram-384';
ALTER TABLE conversation_history ADD COLUMN embedding_model text DEFAULT 'hashed-ngram-384';
-- The start-up check lists the models in use with a skip scan of this index.
CREATE INDEX idx_memories_embedding_model ON memories (embedding_model);
-- Saved meals are searched by meaning too (`search`'s text, embedded).
ALTER TABLE saved_meals ADD COLUMN embedding_model text NOT NULL DEFAULT 'hashed-ngram-384';
CREATE INDEX idx_saved_meals_embedding_model ON saved_meals (embedding_model);
-- Superseded facts ("I'm vegan now" replaces "I'm vegetarian"): the slot a
-- single-valued fact fills (diet, weight goal, name); NULL for the rest.
ALTER TABLE memories ADD COLUMN slot text;
CREATE INDEX idx_memories_user_slot ON memories (user_id, slot) WHERE slot IS NOT NULL;
