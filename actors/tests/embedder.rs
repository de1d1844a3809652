//! The local embedder against reference vectors from an independent
//! implementation (tests/fixtures/minilm_reference.py: numpy + the Python
//! `tokenizers` package over the same safetensors), and the actor's batching.
//! Needs the model: `./dev model` (run by `./dev test`). Missing files fail
//! the test with that instruction; they never skip it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says where it failed

use std::path::PathBuf;

use actors::embedder::{EmbedderConfig, EmbedderHandle, EmbedderShared};

fn model_dir() -> PathBuf {
    std::env::var_os("HA_MODEL_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.data/models/all-MiniLM-L6-v2"),
        PathBuf::from,
    )
}

fn load(cfg: &EmbedderConfig) -> std::sync::Arc<EmbedderShared> {
    EmbedderShared::load(&model_dir(), cfg)
        .unwrap_or_else(|e| panic!("the local embedding model is required for this test: {e}"))
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * y).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[actix::test]
async fn vectors_match_the_reference_implementation() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let sentences = fixture["sentences"].as_array().unwrap();
    let texts: Vec<String> = sentences
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_owned())
        .collect();
    let embedder = EmbedderHandle::start(load(&EmbedderConfig::default()));
    // One batch (padded to the longest) and one by one must both match.
    let batched = embedder.embed(texts.clone()).await.expect("embed");
    for (i, s) in sentences.iter().enumerate() {
        let reference: Vec<f64> = s["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let single = embedder.embed(vec![texts[i].clone()]).await.expect("embed");
        for (how, v) in [("batched", &batched[i]), ("single", &single[0])] {
            assert_eq!(v.len(), 384);
            let c = cosine(v, &reference);
            assert!(c >= 1.0 - 1e-3, "{how} {:?}: cosine {c}", texts[i]);
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{how}: norm {norm}");
        }
    }
}

#[actix::test]
async fn concurrent_requests_share_forward_passes_and_the_gate_bounds_them() {
    let cfg = EmbedderConfig {
        threads: 1,
        mailbox_capacity: 64,
        max_batch: 32,
    };
    let embedder = EmbedderHandle::start(load(&cfg));
    let texts: Vec<String> = (0..24).map(|i| format!("I ate {i} apples today")).collect();
    let alone = embedder.embed(vec![texts[5].clone()]).await.unwrap();
    let before = embedder.shared().stats();
    let all =
        futures_util::future::join_all(texts.iter().map(|t| embedder.embed(vec![t.clone()]))).await;
    let after = embedder.shared().stats();
    assert!(all.iter().all(Result::is_ok));
    // Each caller gets its own vector back, as if it had been alone.
    let mine = &all[5].as_ref().unwrap()[0];
    let c: f32 = mine.iter().zip(&alone[0]).map(|(a, b)| a * b).sum();
    assert!(c > 0.9999, "cosine {c}");
    assert_eq!(after.texts - before.texts, 24);
    assert!(
        after.batches - before.batches < 24,
        "queued texts must share forward passes: {before:?} → {after:?}"
    );
    let s = embedder.gate().stats().snapshot();
    assert_eq!((s.in_flight, s.mailbox_depth), (0, 0));

    let tiny = EmbedderHandle::start(load(&EmbedderConfig {
        mailbox_capacity: 1,
        ..cfg
    }));
    let held = tiny.admit_job().unwrap();
    let refused = tiny.embed(vec!["x".into()]).await;
    assert!(
        matches!(
            refused,
            Err(actors::embedder::EmbedError::Actor(
                actors::ActorError::Overloaded {
                    actor: "embedder",
                    ..
                }
            ))
        ),
        "{refused:?}"
    );
    drop(held);
    assert!(tiny.embed(vec!["x".into()]).await.is_ok());
}

/// Throughput and latency on this machine (loadtest/RESULTS.md):
/// `cargo test -p actors --test embedder -- --ignored --nocapture`.
#[actix::test]
#[ignore = "a measurement, not a check"]
async fn measure_embeddings_per_second_and_p99() {
    let embedder = EmbedderHandle::start(load(&EmbedderConfig::default()));
    let sentence = |i: usize| format!("I had {i} eggs and a slice of toast for breakfast today");
    // Warm up.
    embedder.embed(vec![sentence(0)]).await.unwrap();
    for batch in [1usize, 8, 32] {
        let mut lat = Vec::new();
        let start = std::time::Instant::now();
        let rounds = if batch == 1 { 200 } else { 40 };
        for r in 0..rounds {
            let texts = (0..batch).map(|i| sentence(r * batch + i)).collect();
            let t = std::time::Instant::now();
            embedder.embed(texts).await.unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let secs = start.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
        println!(
            "batch {batch:>2}: {:.0} embeddings/s; per call p50 {:.1} ms, p99 {:.1} ms (per embedding p99 {:.2} ms)",
            (rounds * batch) as f64 / secs,
            p(0.5),
            p(0.99),
            p(0.99) / batch as f64
        );
    }
    // 64 callers of one sentence each at once: the queue batches them.
    let start = std::time::Instant::now();
    let calls = (0..64).map(|i| embedder.embed(vec![sentence(i)]));
    futures_util::future::join_all(calls).await;
    println!(
        "64 concurrent single-sentence calls: {:.0} embeddings/s, stats {:?}",
        64.0 / start.elapsed().as_secs_f64(),
        embedder.shared().stats()
    );
}
