//! The offline embedder: a deterministic bag of hashed features, used when no
//! embeddings provider is configured (and by the mock LLM server).
//!
//! Word unigrams, word bigrams and character trigrams are hashed into `dim`
//! buckets with a sign hash (the "hashing trick"), then L2-normalised, so
//! texts that share words, phrases or word pieces ("egg"/"eggs") point the
//! same way. The hash is our own FNV-1a + mixer, not `std`'s, because the
//! vectors are stored: they must not change between builds.

/// Words that carry little meaning; they still count, but lightly.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "do", "for", "from", "had", "has",
    "have", "i", "i'm", "in", "is", "it", "its", "me", "my", "of", "on", "or", "so", "that", "the",
    "this", "to", "was", "we", "were", "what", "with", "you", "your",
];

const UNIGRAM: f32 = 1.0;
const STOPWORD: f32 = 0.2;
const BIGRAM: f32 = 0.7;
const TRIGRAM: f32 = 0.25;

/// The unit-length embedding of `text` in `dim` dimensions. Text without any
/// word gets a fixed unit vector, so cosine similarity is always defined.
pub fn embed(text: &str, dim: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; dim];
    if dim == 0 {
        return v;
    }
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .collect();
    for w in &words {
        let weight = if STOPWORDS.contains(w) {
            STOPWORD
        } else {
            UNIGRAM
        };
        add(&mut v, 1, w.as_bytes(), weight);
        let padded: Vec<char> = std::iter::once('#')
            .chain(w.chars())
            .chain(std::iter::once('#'))
            .collect();
        for tri in padded.windows(3) {
            let s: String = tri.iter().collect();
            add(&mut v, 3, s.as_bytes(), TRIGRAM);
        }
    }
    for pair in words.windows(2) {
        let s = format!("{} {}", pair[0], pair[1]);
        add(&mut v, 2, s.as_bytes(), BIGRAM);
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        v[bucket(0, b"", dim).0] = 1.0;
    }
    v
}

/// Cosine similarity of two vectors of equal length (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

fn add(v: &mut [f32], kind: u8, feature: &[u8], weight: f32) {
    let (i, sign) = bucket(kind, feature, v.len());
    v[i] += sign * weight;
}

/// The feature's bucket and sign; `kind` keeps "eggs" the word apart from
/// "eggs" the trigram.
fn bucket(kind: u8, feature: &[u8], dim: usize) -> (usize, f32) {
    let h = mix(fnv1a(kind, feature));
    let i = ((h >> 1) % dim as u64) as usize;
    (i, if h & 1 == 0 { 1.0 } else { -1.0 })
}

fn fnv1a(kind: u8, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(&kind).chain(bytes) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// splitmix64's finaliser: spreads FNV's weak low bits over the whole word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    #[test]
    fn vectors_have_the_requested_dimension_and_unit_length() {
        for dim in [1, 16, 384, 1536] {
            let v = embed("I ate two eggs and toast", dim);
            assert_eq!(v.len(), dim);
            assert!((norm(&v) - 1.0).abs() < 1e-5, "dim {dim}");
        }
        assert!(embed("anything", 0).is_empty());
    }

    #[test]
    fn the_same_text_always_gets_the_same_vector() {
        let a = embed("Protein goal: 120 g a day", 384);
        assert_eq!(a, embed("Protein goal: 120 g a day", 384));
        // Pinned: stored vectors must survive a rebuild with another Rust.
        let nonzero: Vec<usize> = embed("eggs", 384)
            .iter()
            .enumerate()
            .filter(|(_, x)| **x != 0.0)
            .map(|(i, _)| i)
            .collect();
        // One word and four trigrams (#eg, egg, ggs, gs#).
        assert_eq!(nonzero, vec![15, 210, 363, 370, 377]);
    }

    #[test]
    fn case_and_punctuation_do_not_matter() {
        let a = embed("I ate EGGS!", 384);
        let b = embed("i ate eggs", 384);
        assert!(cosine(&a, &b) > 0.999);
    }

    #[test]
    fn similar_texts_are_closer_than_unrelated_ones() {
        let meal = embed("I had scrambled eggs and toast for breakfast", 384);
        let similar = embed("scrambled eggs with toast this morning", 384);
        let plural = embed("egg breakfast", 384);
        let unrelated = embed("my knee hurts after running the marathon", 384);
        let s = cosine(&meal, &similar);
        let u = cosine(&meal, &unrelated);
        assert!(s > 0.5, "similar {s}");
        assert!(u < 0.2, "unrelated {u}");
        assert!(cosine(&meal, &plural) > u, "word pieces count");
    }

    #[test]
    fn word_order_counts_through_bigrams() {
        let a = embed("dog bites man", 384);
        let b = embed("man bites dog", 384);
        let same = cosine(&a, &embed("dog bites man", 384));
        let swapped = cosine(&a, &b);
        assert!(swapped < same && swapped > 0.5, "{swapped}");
    }

    #[test]
    fn text_without_words_gets_a_fixed_unit_vector() {
        let a = embed("", 384);
        let b = embed("  ?! ", 384);
        assert_eq!(a, b);
        assert!((norm(&a) - 1.0).abs() < 1e-6);
    }
}
