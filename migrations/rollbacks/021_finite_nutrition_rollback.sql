-- The cleared values are not restored (they were not numbers).
ALTER TABLE food_entries DROP CONSTRAINT IF EXISTS food_entries_finite_nutrition;
