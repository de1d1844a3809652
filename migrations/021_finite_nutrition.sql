-- Nutrition values must be finite: float8 takes 'Infinity' and 'NaN', and a
-- 305-digit quantity once stored Infinity calories (the API then showed null
-- and the day's total broke). PostgreSQL orders NaN above Infinity, so
-- "< 'Infinity'" rules out both. Rows already broken lose the bad values and
-- count as unknown nutrition.
UPDATE food_entries
   SET grams = NULL, calories = NULL, protein_g = NULL, carbs_g = NULL, fat_g = NULL,
       nutrition_source = 'unknown'
 WHERE NOT (coalesce(grams, 0) < 'Infinity' AND coalesce(calories, 0) < 'Infinity'
            AND coalesce(protein_g, 0) < 'Infinity' AND coalesce(carbs_g, 0) < 'Infinity'
            AND coalesce(fat_g, 0) < 'Infinity');

ALTER TABLE food_entries
    ADD CONSTRAINT food_entries_finite_nutrition CHECK (
        coalesce(grams, 0) < 'Infinity' AND coalesce(calories, 0) < 'Infinity'
        AND coalesce(protein_g, 0) < 'Infinity' AND coalesce(carbs_g, 0) < 'Infinity'
        AND coalesce(fat_g, 0) < 'Infinity');
