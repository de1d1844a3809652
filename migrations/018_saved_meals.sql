-- Saved meals (the original's "food formulas"): a named set of foods a user
-- logs again and again, logged in one step. `foods` holds the settled foods
-- (nutrition given or estimated when saved); the totals are ours, summed
-- from them. `food_keys` is the sorted set of the foods' identities, so a
-- suggested combination can tell it is saved already.
CREATE TABLE saved_meals (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    keywords         text[] NOT NULL DEFAULT '{}',
    description      text,
    foods            jsonb NOT NULL CHECK (jsonb_typeof(foods) = 'array'),
    food_keys        text[] NOT NULL,
    total_calories   double precision NOT NULL CHECK (total_calories >= 0),
    total_protein_g  double precision NOT NULL CHECK (total_protein_g >= 0),
    total_carbs_g    double precision NOT NULL CHECK (total_carbs_g >= 0),
    total_fat_g      double precision NOT NULL CHECK (total_fat_g >= 0),
    -- Name, keywords, description and foods as words, for keyword search.
    search           tsvector NOT NULL,
    -- The same text embedded (384 dimensions, like memories), for search by meaning.
    embedding        vector(384) NOT NULL,
    times_used       integer NOT NULL DEFAULT 0 CHECK (times_used >= 0),
    last_used_at     timestamptz,
    is_auto_detected boolean NOT NULL DEFAULT false,
    confidence_score double precision CHECK (confidence_score BETWEEN 0 AND 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- A user's list, most used first; it also narrows every search to one user
-- (then distances are exact over that user's few rows, as for memories).
CREATE INDEX idx_saved_meals_user_used
    ON saved_meals (user_id, times_used DESC, last_used_at DESC NULLS LAST);

-- Keyword search over name, keywords, description and foods.
CREATE INDEX idx_saved_meals_search ON saved_meals USING gin (search);
