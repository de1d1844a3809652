-- local_date is the user's calendar day when the food was eaten, fixed at
-- insert time from their timezone, so daily summaries are one index range.
CREATE TABLE food_entries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    description      text NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
    quantity         text,
    food             text,
    grams            double precision CHECK (grams IS NULL OR grams > 0),
    calories         double precision CHECK (calories IS NULL OR calories >= 0),
    protein_g        double precision CHECK (protein_g IS NULL OR protein_g >= 0),
    carbs_g          double precision CHECK (carbs_g IS NULL OR carbs_g >= 0),
    fat_g            double precision CHECK (fat_g IS NULL OR fat_g >= 0),
    nutrition_source text NOT NULL CHECK (nutrition_source IN ('user', 'estimated', 'unknown')),
    logged_at        timestamptz NOT NULL,
    local_date       date NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
