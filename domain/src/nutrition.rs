//! Nutrition estimates for free-text food log entries.
//!
//! Data: `data/nutrition.csv`, embedded at compile time. Energy and macros are
//! per 100 g from USDA FoodData Central (SR Legacy / Foundation, public domain);
//! each row also carries a typical unit (`medium`, `slice`, `can`, ...) with its
//! weight, and the weight of one cup where a cup makes sense.
//!
//! Food matching: text is lower-cased, punctuation dropped and simple plurals
//! folded (`bananas`→`banana`, `berries`→`berry`, `tomatoes`→`tomato`). Every
//! food name or alias found as a whole-word sequence is a candidate; the one
//! with the most words wins, ties go to the earliest position, then table order.
//! So "grilled chicken breast with rice" is chicken breast, "rice with chicken"
//! is rice and "dragonfruit smoothie bowl with quinoa" is quinoa (the only
//! listed food). No candidate → `None`; unknown foods never get made-up numbers.
//!
//! Quantity: read from `quantity`; if that is absent or has no recognisable
//! amount or unit, from the description; failing both, one typical unit. An
//! explicit zero, negative or non-finite amount gives `None`. Understood:
//! numbers, fractions (`1/2`, `½`, `1 1/2`), `one`…`twelve`, `a`/`an`, `half`,
//! `quarter`, `dozen`, `and a half`; units `g`, `kg`, `oz`, `lb`, `ml`/`l`
//! (1 ml counted as 1 g), `fl oz`, `pint`, `cup`, `tbsp` (15 g), `tsp` (5 g);
//! `small`/`medium`/`large` = 0.75/1/1.25 typical units (1 if the word is the
//! food's own unit, e.g. a large egg). A bare count or any other word
//! (`2`, `2 whole`, `2 slices`, `1 serving`) counts typical units. The food's
//! own unit wins over the generic one (`1 tbsp honey` is 21 g). A cup of a
//! food without a cup weight is 240 g for drinks (unit glass/can/bottle/shot)
//! and one typical unit otherwise.

use std::cmp::Reverse;
use std::sync::OnceLock;

const TABLE_CSV: &str = include_str!("../data/nutrition.csv");

/// One US cup of a drink, in grams (1 ml ≈ 1 g).
const LIQUID_CUP_GRAMS: f64 = 240.0;
const TBSP_GRAMS: f64 = 15.0;
const TSP_GRAMS: f64 = 5.0;

#[derive(Debug, Clone, PartialEq)]
pub struct NutritionEstimate {
    /// Canonical food name from the table.
    pub food: &'static str,
    pub grams: f64,
    pub calories: f64,
    pub protein_g: f64,
    pub carbs_g: f64,
    pub fat_g: f64,
}

/// The most one entry may weigh: a plausible single meal's portion. More
/// is a typo or abuse (a 305-digit quantity made `Infinity` calories).
pub const MAX_GRAMS: f64 = 5_000.0;

/// Like [`estimate`], but a quantity past [`MAX_GRAMS`] is an error (why,
/// for a 400) instead of an estimate; every value returned is finite.
pub fn estimate_checked(
    description: &str,
    quantity: Option<&str>,
) -> Result<Option<NutritionEstimate>, String> {
    match estimate(description, quantity) {
        Some(e) if !(e.grams.is_finite() && e.grams <= MAX_GRAMS) => Err(format!(
            "means {} g of {}; at most {MAX_GRAMS} g can be logged at once",
            e.grams, e.food
        )),
        // Rounds to 0 g (".01/4 tbsp"): nothing to log, and the table
        // requires grams > 0.
        Some(e) if e.grams <= 0.0 => Err(format!(
            "means less than 0.1 g of {}; give an amount that can be weighed",
            e.food
        )),
        other => Ok(other),
    }
}

/// Estimates nutrition for a log entry, or `None` if no listed food is
/// mentioned or the quantity is zero, negative or not finite.
pub fn estimate(description: &str, quantity: Option<&str>) -> Option<NutritionEstimate> {
    let index = index();
    let food = &index.foods[find_food(index, description)?];
    let parsed = match quantity.map(|q| parse_quantity(q, food)) {
        Some(Quantity::Unknown) | None => parse_quantity(description, food),
        Some(known) => known,
    };
    let grams = match parsed {
        Quantity::Grams(grams) => grams,
        Quantity::Invalid => return None,
        Quantity::Unknown => food.unit_grams,
    };
    let per_100g = grams / 100.0;
    Some(NutritionEstimate {
        food: food.name,
        grams: round1(grams),
        calories: round1(food.kcal * per_100g),
        protein_g: round1(food.protein * per_100g),
        carbs_g: round1(food.carbs * per_100g),
        fat_g: round1(food.fat * per_100g),
    })
}

/// Number of foods in the embedded table.
pub fn table_len() -> usize {
    index().foods.len()
}

#[derive(Debug)]
struct Food {
    name: &'static str,
    aliases: &'static str,
    kcal: f64,
    protein: f64,
    carbs: f64,
    fat: f64,
    unit_name: &'static str,
    unit_grams: f64,
    cup_grams: Option<f64>,
}

impl Food {
    fn is_drink(&self) -> bool {
        matches!(self.unit_name, "glass" | "can" | "bottle" | "shot")
    }
}

struct Alias {
    words: Vec<String>,
    food: usize,
}

struct Index {
    foods: Vec<Food>,
    aliases: Vec<Alias>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    // Bad rows are skipped rather than panicking a server; the tests insist there are none.
    INDEX.get_or_init(|| build_index(parse_table(TABLE_CSV).0))
}

fn parse_table(src: &'static str) -> (Vec<Food>, Vec<String>) {
    let mut foods = Vec::new();
    let mut errors = Vec::new();
    for (number, line) in src.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("name,") {
            continue;
        }
        match parse_row(line) {
            Ok(food) => foods.push(food),
            Err(e) => errors.push(format!("line {}: {e}: {line}", number + 1)),
        }
    }
    (foods, errors)
}

fn parse_row(line: &'static str) -> Result<Food, String> {
    let fields: Vec<&'static str> = line.split(',').map(str::trim).collect();
    if fields.len() != 9 {
        return Err(format!("expected 9 fields, got {}", fields.len()));
    }
    let number = |i: usize| -> Result<f64, String> {
        fields[i]
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("column {} is not a non-negative number", i + 1))
    };
    let food = Food {
        name: fields[0],
        aliases: fields[1],
        kcal: number(2)?,
        protein: number(3)?,
        carbs: number(4)?,
        fat: number(5)?,
        unit_name: fields[6],
        unit_grams: number(7)?,
        cup_grams: if fields[8].is_empty() {
            None
        } else {
            Some(number(8)?)
        },
    };
    if food.name.is_empty() || food.unit_name.is_empty() {
        return Err("empty name or unit".to_string());
    }
    if food.unit_grams <= 0.0 || food.cup_grams.is_some_and(|c| c <= 0.0) {
        return Err("unit and cup weights must be positive".to_string());
    }
    if food.protein + food.carbs + food.fat > 100.0 {
        return Err("macros exceed 100 g per 100 g".to_string());
    }
    Ok(food)
}

fn build_index(foods: Vec<Food>) -> Index {
    let mut aliases: Vec<Alias> = Vec::new();
    for (i, food) in foods.iter().enumerate() {
        for alias in std::iter::once(food.name).chain(food.aliases.split('|')) {
            let words = normalize(alias);
            if !words.is_empty() && !aliases.iter().any(|a| a.food == i && a.words == words) {
                aliases.push(Alias { words, food: i });
            }
        }
    }
    Index { foods, aliases }
}

/// Most words first, then earliest position, then table order.
fn find_food(index: &Index, description: &str) -> Option<usize> {
    let words = normalize(description);
    index
        .aliases
        .iter()
        .filter_map(|alias| {
            let len = alias.words.len();
            words
                .windows(len)
                .position(|window| window == alias.words.as_slice())
                .map(|pos| (Reverse(len), pos, alias.food))
        })
        .min()
        .map(|(_, _, food)| food)
}

/// Lower-cased, folded words; `%` is kept so "2% milk" is not "2 milk".
fn normalize(text: &str) -> Vec<String> {
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '\'' | '’'))
        .map(|c| {
            if c.is_alphanumeric() || c == '%' {
                c
            } else {
                ' '
            }
        })
        .collect();
    cleaned.split_whitespace().map(fold).collect()
}

/// Crude English plural folding. It only has to map a word and its plural to
/// the same key, since aliases go through it too (`cookie`/`cookies` → `cooky`).
fn fold(word: &str) -> String {
    // "fries" stays apart from "fry" so "stir fry" is not French fries.
    if word == "fries" || !word.chars().all(char::is_alphabetic) {
        return word.to_string();
    }
    let long = word.chars().count() > 3;
    let strip = |suffix: &str, replacement: &str| {
        word.strip_suffix(suffix)
            .map(|base| format!("{base}{replacement}"))
    };
    let sibilant = ["ches", "shes", "sses", "xes"]
        .iter()
        .any(|suffix| word.ends_with(suffix));
    let keeps_s = word.ends_with("ss") || word.ends_with("us");
    let stem = (if long && word.ends_with("ies") {
        strip("ies", "y")
    } else if long && word.ends_with("oes") {
        strip("oes", "o")
    } else if sibilant {
        strip("es", "")
    } else if long && !keeps_s {
        strip("s", "")
    } else {
        None
    })
    .unwrap_or_else(|| word.to_string());
    match stem.strip_suffix("ie") {
        Some(base) => format!("{base}y"),
        None => stem,
    }
}

#[derive(Debug, PartialEq)]
enum Quantity {
    Grams(f64),
    Invalid,
    Unknown,
}

fn parse_quantity(text: &str, food: &Food) -> Quantity {
    let tokens = quantity_tokens(text);
    // A real number beats an article: "a steak, 200 g" is 200 g.
    let article = |t: &String| t == "a" || t == "an";
    let start = (0..tokens.len())
        .find(|&i| !article(&tokens[i]) && parse_amount(&tokens, i).is_some())
        .or_else(|| (0..tokens.len()).find(|&i| article(&tokens[i])));
    let grams = match start.and_then(|i| parse_amount(&tokens, i)) {
        Some((amount, next)) => {
            amount * unit_weight(&tokens, next, food).unwrap_or(food.unit_grams)
        }
        // No amount: a leading unit alone means one of it ("slice of pizza", "large latte").
        None => match unit_weight(&tokens, 0, food) {
            Some(grams) => grams,
            None => return Quantity::Unknown,
        },
    };
    if grams.is_finite() && grams > 0.0 {
        Quantity::Grams(grams)
    } else {
        Quantity::Invalid
    }
}

/// Splits into number-like and word tokens: "1½cups" → ["1", "1/2", "cup"].
/// Signs, decimal points and slashes stay attached to digits so "-1" and "1/2"
/// survive, and "2%" stays one token so "2% milk" is not two glasses.
fn quantity_tokens(text: &str) -> Vec<String> {
    let mut expanded = String::new();
    for c in text.to_lowercase().chars() {
        match c {
            '½' => expanded.push_str(" 1/2 "),
            '¼' => expanded.push_str(" 1/4 "),
            '¾' => expanded.push_str(" 3/4 "),
            '⅓' => expanded.push_str(" 1/3 "),
            '⅔' => expanded.push_str(" 2/3 "),
            '\'' | '’' => {}
            _ => expanded.push(c),
        }
    }
    let chars: Vec<char> = expanded.chars().collect();
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut current_numeric = false;
    for (i, &c) in chars.iter().enumerate() {
        let prev_digit = i > 0 && chars[i - 1].is_ascii_digit();
        let next_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
        let numeric = c.is_ascii_digit()
            || (c == '.' && next_digit)
            || (c == '-' && next_digit && !prev_digit)
            || (c == '/' && prev_digit && next_digit)
            || (c == '%' && prev_digit);
        if !numeric && !c.is_alphabetic() {
            flush_token(&mut current, &mut tokens);
            continue;
        }
        if numeric != current_numeric {
            flush_token(&mut current, &mut tokens);
        }
        current.push(c);
        current_numeric = numeric;
    }
    flush_token(&mut current, &mut tokens);
    tokens
}

fn flush_token(current: &mut String, tokens: &mut Vec<String>) {
    if !current.is_empty() {
        tokens.push(fold(current));
        current.clear();
    }
}

fn parse_number(token: &str) -> Option<f64> {
    let plain = token
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == '-');
    if plain && token.chars().any(|c| c.is_ascii_digit()) {
        token.parse().ok()
    } else {
        None
    }
}

fn parse_fraction(token: &str) -> Option<f64> {
    let (numerator, denominator) = token.split_once('/')?;
    Some(parse_number(numerator)? / parse_number(denominator)?)
}

fn word_number(token: &str) -> Option<f64> {
    let words = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve",
    ];
    words
        .iter()
        .position(|w| *w == token)
        .map(|i| (i + 1) as f64)
}

/// Reads an amount starting at `tokens[i]`; returns it and the index after it
/// (and after any "of"/"a"/"an" filler, as in "half of an avocado").
fn parse_amount(tokens: &[String], i: usize) -> Option<(f64, usize)> {
    let token = tokens.get(i)?.as_str();
    let mut next = i + 1;
    let mut amount = if let Some(whole) = parse_number(token) {
        match tokens.get(next).and_then(|t| parse_fraction(t)) {
            Some(fraction) => {
                next += 1;
                whole + fraction
            }
            None => whole,
        }
    } else if let Some(fraction) = parse_fraction(token) {
        fraction
    } else if let Some(n) = word_number(token) {
        n
    } else {
        match token {
            "a" | "an" => {
                // "a half cup", "a dozen eggs", "a 12 oz steak"
                if let Some(found) = parse_amount(tokens, next) {
                    return Some(found);
                }
                1.0
            }
            "half" => 0.5,
            "quarter" => 0.25,
            "dozen" => 12.0,
            _ => return None,
        }
    };
    let word = |k: usize| tokens.get(k).map_or("", String::as_str);
    if word(next) == "and" {
        if word(next + 1) == "half" {
            amount += 0.5;
            next += 2;
        } else if matches!(word(next + 1), "a" | "an") && word(next + 2) == "half" {
            amount += 0.5;
            next += 3;
        } else if let Some(fraction) = parse_fraction(word(next + 1)) {
            amount += fraction;
            next += 2;
        }
    }
    if word(next) == "dozen" {
        amount *= 12.0;
        next += 1;
    }
    while matches!(word(next), "of" | "a" | "an" | "the") {
        next += 1;
    }
    Some((amount, next))
}

/// Grams per counted unit for the unit word at `tokens[i]`, if it is one.
fn unit_weight(tokens: &[String], i: usize, food: &Food) -> Option<f64> {
    let token = tokens.get(i)?.as_str();
    let own_unit = fold(food.unit_name);
    let grams = match token {
        "fl" if matches!(tokens.get(i + 1).map(String::as_str), Some("oz" | "ounce")) => 29.5735,
        "g" | "gr" | "gm" | "gram" | "gramme" => 1.0,
        "kg" | "kgs" | "kilo" | "kilogram" => 1000.0,
        "oz" | "ounce" => 28.3495,
        "lb" | "lbs" | "pound" => 453.592,
        "ml" | "milliliter" | "millilitre" => 1.0,
        "cl" => 10.0,
        "dl" => 100.0,
        "l" | "liter" | "litre" => 1000.0,
        "pint" => 473.0,
        "cup" => match food.cup_grams {
            Some(cup) => cup,
            None if food.is_drink() => LIQUID_CUP_GRAMS,
            None => food.unit_grams,
        },
        t if t == own_unit => food.unit_grams,
        "tbsp" | "tbs" | "tablespoon" => TBSP_GRAMS,
        "tsp" | "teaspoon" => TSP_GRAMS,
        "small" | "medium" | "regular" | "large" | "big" => {
            let size = if token == "big" { "large" } else { token };
            if size == own_unit {
                food.unit_grams
            } else {
                match size {
                    "small" => 0.75 * food.unit_grams,
                    "large" => 1.25 * food.unit_grams,
                    _ => food.unit_grams,
                }
            }
        }
        "whole" | "piece" | "pc" | "pcs" | "serving" | "portion" | "item" | "each" | "unit"
        | "slice" | "bowl" | "plate" | "glass" | "can" | "bottle" | "handful" | "scoop" | "bar"
        | "container" | "pack" | "packet" | "bag" | "order" | "shot" | "mug" => food.unit_grams,
        _ => return None,
    };
    Some(grams)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn est(description: &str, quantity: Option<&str>) -> NutritionEstimate {
        estimate(description, quantity)
            .unwrap_or_else(|| panic!("no estimate for {description:?} / {quantity:?}"))
    }

    fn grams(description: &str, quantity: Option<&str>) -> f64 {
        est(description, quantity).grams
    }

    #[test]
    fn table_has_at_least_150_rows_and_every_row_parses() {
        let (foods, errors) = parse_table(TABLE_CSV);
        assert!(errors.is_empty(), "bad rows: {errors:#?}");
        assert!(foods.len() >= 150, "only {} rows", foods.len());
        assert_eq!(table_len(), foods.len());
    }

    #[test]
    fn every_row_has_positive_weights_and_calories_consistent_with_its_macros() {
        // Alcohol (7 kcal/g) is not a column, so drinks with it only have a lower bound.
        let alcoholic = ["beer", "light beer", "red wine", "white wine", "spirits"];
        for food in &index().foods {
            assert!(food.unit_grams > 0.0, "{}", food.name);
            assert!(food.cup_grams.is_none_or(|c| c > 0.0), "{}", food.name);
            let atwater = 4.0 * food.protein + 4.0 * food.carbs + 9.0 * food.fat;
            let diff = food.kcal - atwater;
            if alcoholic.contains(&food.name) {
                assert!(
                    diff > -30.0,
                    "{}: {} kcal < {atwater:.0}",
                    food.name,
                    food.kcal
                );
            } else {
                assert!(
                    diff.abs() <= 30.0_f64.max(0.25 * food.kcal),
                    "{}: {} kcal but macros give {atwater:.0}",
                    food.name,
                    food.kcal
                );
            }
        }
    }

    #[test]
    fn no_alias_points_at_two_different_foods() {
        let mut seen: HashMap<&[String], usize> = HashMap::new();
        let index = index();
        for alias in &index.aliases {
            if let Some(&other) = seen.get(alias.words.as_slice()) {
                assert_eq!(
                    other, alias.food,
                    "{:?} is both {} and {}",
                    alias.words, index.foods[other].name, index.foods[alias.food].name
                );
            }
            seen.insert(&alias.words, alias.food);
        }
    }

    #[test]
    fn grams_given_in_the_description_are_used_directly() {
        let e = est("170g chicken breast", None);
        assert_eq!(e.food, "chicken breast");
        assert_eq!(e.grams, 170.0);
        assert_eq!(e.calories, 280.5);
        assert_eq!(e.protein_g, 52.7);
        assert_eq!(e.carbs_g, 0.0);
        assert_eq!(e.fat_g, 6.1);
        assert_eq!(grams("chicken breast", Some("170 g")), 170.0);
    }

    #[test]
    fn two_eggs_weigh_100_grams() {
        let e = est("2 eggs", None);
        assert_eq!(e.food, "egg");
        assert_eq!(e.grams, 100.0);
        assert_eq!(e.calories, 143.0);
    }

    #[test]
    fn one_medium_banana_is_118_grams() {
        let e = est("1 medium banana", None);
        assert_eq!((e.food, e.grams, e.calories), ("banana", 118.0, 105.0));
    }

    #[test]
    fn one_cup_of_rice_is_158_grams_of_cooked_white_rice() {
        let e = est("1 cup rice", None);
        assert_eq!((e.food, e.grams, e.calories), ("white rice", 158.0, 205.4));
    }

    #[test]
    fn half_an_avocado_is_half_a_typical_avocado() {
        let e = est("half an avocado", None);
        assert_eq!((e.food, e.grams, e.calories), ("avocado", 100.5, 160.8));
    }

    #[test]
    fn a_slice_of_pizza_is_one_slice() {
        let e = est("a slice of pizza", None);
        assert_eq!(
            (e.food, e.grams, e.calories),
            ("cheese pizza", 107.0, 284.6)
        );
        assert_eq!(grams("pizza", Some("2 slices")), 214.0);
        assert_eq!(grams("slice of pizza", None), 107.0);
    }

    #[test]
    fn an_unlisted_dish_falls_back_to_its_only_listed_ingredient() {
        // Documented rule, not a guess: quinoa is the only alias present, one cup by default.
        let e = est("dragonfruit smoothie bowl with quinoa", None);
        assert_eq!((e.food, e.grams, e.calories), ("quinoa", 185.0, 222.0));
    }

    #[test]
    fn unknown_food_gives_none() {
        assert_eq!(estimate("dragonfruit", None), None);
        assert_eq!(estimate("zorblax stew", Some("200g")), None);
        assert_eq!(estimate("", None), None);
        assert_eq!(estimate("2", Some("1 cup")), None);
    }

    #[test]
    fn longest_alias_wins_and_ties_go_to_the_earliest() {
        assert_eq!(
            est("grilled chicken breast with rice", None).food,
            "chicken breast"
        );
        assert_eq!(est("rice with chicken", None).food, "white rice");
        assert_eq!(est("brown rice", None).food, "brown rice");
        assert_eq!(est("toast with peanut butter", None).food, "peanut butter");
        assert_eq!(est("Orange Juice, fresh!", None).food, "orange juice");
        assert_eq!(est("coke zero", None).food, "diet soda");
    }

    #[test]
    fn zero_negative_or_infinite_quantities_give_none() {
        assert_eq!(estimate("chicken breast", Some("0g")), None);
        assert_eq!(estimate("rice", Some("-1 cup")), None);
        assert_eq!(estimate("0 eggs", None), None);
        assert_eq!(estimate("rice", Some("1/0 cup")), None);
        assert_eq!(estimate("rice", Some("0/0")), None);
        assert_eq!(
            estimate("rice", Some(format!("{} kg", "9".repeat(400)).as_str())),
            None
        );
    }

    #[test]
    fn plurals_match_singular_aliases() {
        assert_eq!(est("3 bananas", None).grams, 354.0);
        assert_eq!(est("a cup of blueberries", None).food, "blueberry");
        assert_eq!(est("10 cherries", None).grams, 80.0);
        assert_eq!(est("2 cookies", None).food, "cookie");
        assert_eq!(est("cookie", None).food, "cookie");
        assert_eq!(est("2 tomatoes", None).grams, 246.0);
        assert_eq!(est("2 peaches", None).food, "peach");
        assert_eq!(est("small fries", None).grams, 87.8);
        assert_eq!(est("3 kiwis", None).food, "kiwi");
        assert_eq!(est("fries", None).food, "french fries");
        assert_eq!(est("stir fry vegetables", None).food, "mixed vegetables");
        assert_eq!(
            est("2 slices whole wheat toast", None).food,
            "whole wheat bread"
        );
    }

    #[test]
    fn the_quantity_argument_beats_the_description() {
        assert_eq!(grams("2 eggs", Some("3")), 150.0);
        // Unparseable quantity: fall back to the description, then to one unit.
        assert_eq!(grams("2 eggs", Some("some")), 100.0);
        assert_eq!(grams("banana", Some("some")), 118.0);
        assert_eq!(grams("banana", None), 118.0);
    }

    #[test]
    fn metric_and_imperial_weights_convert_to_grams() {
        assert_eq!(grams("chicken breast", Some("0.2 kg")), 200.0);
        assert_eq!(grams("steak", Some("8 oz")), 226.8);
        assert_eq!(grams("ground beef", Some("1 lb")), 453.6);
        assert_eq!(grams("orange juice", Some("250ml")), 250.0);
        assert_eq!(grams("cola", Some("12 fl oz")), 354.9);
        assert_eq!(grams("a 12 oz steak", None), 340.2);
        assert_eq!(grams("a steak, 200 g", None), 200.0);
    }

    #[test]
    fn size_words_scale_the_typical_unit() {
        assert_eq!(grams("banana", Some("1 small")), 88.5);
        assert_eq!(grams("banana", Some("2 large")), 295.0);
        assert_eq!(grams("2 large eggs", None), 100.0);
        assert_eq!(grams("1 small egg", None), 37.5);
        assert_eq!(grams("large latte", None), 442.5);
    }

    #[test]
    fn counts_words_and_fractions_are_understood() {
        assert_eq!(grams("banana", Some("2")), 236.0);
        assert_eq!(grams("banana", Some("2 whole")), 236.0);
        assert_eq!(grams("two bananas", None), 236.0);
        assert_eq!(grams("an apple", None), 182.0);
        assert_eq!(grams("rice", Some("1/2 cup")), 79.0);
        assert_eq!(grams("rice", Some("½ cup")), 79.0);
        assert_eq!(grams("rice", Some("1½ cups")), 237.0);
        assert_eq!(grams("rice", Some("1 1/2 cups")), 237.0);
        assert_eq!(grams("rice", Some("1.5 cups")), 237.0);
        assert_eq!(grams("rice", Some("half a cup")), 79.0);
        assert_eq!(grams("rice", Some("one and a half cups")), 237.0);
        assert_eq!(grams("avocado", Some("half a")), 100.5);
        assert_eq!(grams("avocado", Some("half")), 100.5);
        assert_eq!(grams("a dozen eggs", None), 600.0);
        assert_eq!(grams("rice", Some("1 serving")), 158.0);
    }

    #[test]
    fn spoons_weigh_15_and_5_grams_unless_the_food_is_measured_in_them() {
        assert_eq!(grams("rice", Some("1 tbsp")), 15.0);
        assert_eq!(grams("rice", Some("2 tsp")), 10.0);
        assert_eq!(grams("honey", Some("1 tbsp")), 21.0);
        assert_eq!(grams("2 tbsp peanut butter", None), 32.0);
    }

    #[test]
    fn a_cup_of_a_food_without_cup_weight_is_240g_for_drinks_else_one_unit() {
        assert_eq!(grams("red wine", Some("1 cup")), 240.0);
        assert_eq!(grams("potato", Some("1 cup")), 173.0);
        assert_eq!(grams("a glass of wine", None), 147.0);
        assert_eq!(grams("a can of coke", None), 368.0);
    }

    #[test]
    fn a_percentage_in_the_name_is_not_a_count() {
        let e = est("2% milk", None);
        assert_eq!((e.food, e.grams), ("2% milk", 244.0));
    }

    #[test]
    fn outputs_are_rounded_to_one_decimal() {
        let e = est("almonds", Some("33.33 g"));
        for value in [e.grams, e.calories, e.protein_g, e.carbs_g, e.fat_g] {
            assert_eq!(value, (value * 10.0).round() / 10.0);
        }
        assert_eq!(e.grams, 33.3);
        assert_eq!(e.calories, 193.0);
    }
}
