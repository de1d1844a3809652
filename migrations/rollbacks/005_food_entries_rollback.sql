DROP TABLE IF EXISTS food_entries;
