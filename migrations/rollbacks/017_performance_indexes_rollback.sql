DROP INDEX IF EXISTS idx_xp_events_user_type_day;
DROP INDEX IF EXISTS idx_memories_user;
DROP INDEX IF EXISTS idx_food_entries_user_day;
DROP INDEX IF EXISTS idx_reminders_user_active;
DROP INDEX IF EXISTS idx_reminders_active_due;
DROP INDEX IF EXISTS idx_conversation_history_user_ts;
