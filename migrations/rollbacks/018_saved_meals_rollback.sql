DROP TABLE IF EXISTS saved_meals;
