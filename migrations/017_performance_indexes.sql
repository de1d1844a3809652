-- The deployment guide's performance indexes (its 017_performance_indexes.sql).

-- Recent history for the chat context: an index-only scan of one user's
-- newest messages, without touching the heap.
CREATE INDEX idx_conversation_history_user_ts
    ON conversation_history (user_id, "timestamp" DESC)
    INCLUDE (role, content, message_type, metadata);

-- The scheduler polls only active reminders that are due.
CREATE INDEX idx_reminders_active_due
    ON reminders (next_trigger_at)
    WHERE active;

-- A user's reminder list shows active ones.
CREATE INDEX idx_reminders_user_active
    ON reminders (user_id, created_at)
    WHERE active;

-- Daily food summaries read one user's recent days. A partial index on
-- "recent" would need a fixed cutoff date (now() is not allowed in an index
-- predicate) and go stale, so entries with nutrition are indexed by day,
-- newest first, and carry the macros the summary adds up.
CREATE INDEX idx_food_entries_user_day
    ON food_entries (user_id, local_date DESC, logged_at DESC)
    INCLUDE (calories, protein_g, carbs_g, fat_g);

CREATE INDEX idx_memories_user ON memories (user_id);
-- Streaks read one user's distinct active days per event type.
CREATE INDEX idx_xp_events_user_type_day ON xp_events (user_id, event_type, local_date);
