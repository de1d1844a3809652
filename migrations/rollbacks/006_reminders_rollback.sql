DROP TABLE IF EXISTS reminder_completions;
DROP TABLE IF EXISTS reminders;
