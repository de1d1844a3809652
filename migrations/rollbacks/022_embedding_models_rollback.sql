DROP INDEX IF EXISTS idx_memories_user_slot;
DROP INDEX IF EXISTS idx_memories_embedding_model;
DROP INDEX IF EXISTS idx_saved_meals_embedding_model;
ALTER TABLE saved_meals DROP COLUMN IF EXISTS embedding_model;
ALTER TABLE memories DROP COLUMN IF EXISTS slot;
ALTER TABLE memories DROP COLUMN IF EXISTS embedding_model;
ALTER TABLE conversation_history DROP COLUMN IF EXISTS embedding_model;
