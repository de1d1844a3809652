//! The local sentence embedder: all-MiniLM-L6-v2 on actix `SyncArbiter`
//! threads, since a forward pass is CPU work that would stall a worker's
//! arbiter (every request on that worker) for milliseconds.
//!
//! Callers queue a job (texts, a gate ticket, a reply channel) and nudge
//! the actors with `Drain`; whichever thread takes it embeds *everything*
//! queued by then (up to `max_batch` texts) in one forward pass, so texts
//! that arrive together share the matrix work. The gate (`embedder`)
//! bounds queued + running jobs like every other family, and its figures
//! show in `/api/v1/metrics` and Prometheus.

mod model;

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};
use tokio::sync::oneshot;

pub use model::{model_present, LocalModel, LOCAL_MODEL_NAME, MODEL_FILES};

use crate::error::ActorError;
use crate::gate::{Admission, Gate, Ticket, Timing};

#[derive(Debug, Clone)]
pub struct EmbedderConfig {
    /// SyncArbiter threads running the model.
    pub threads: usize,
    /// Jobs queued or running at once (the gate).
    pub mailbox_capacity: usize,
    /// Texts per forward pass at most.
    pub max_batch: usize,
}

impl Default for EmbedderConfig {
    fn default() -> Self {
        Self {
            threads: 1,
            mailbox_capacity: 256,
            max_batch: 32,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Actor(#[from] ActorError),
    #[error("local embedder failed: {0}")]
    Model(String),
}

type Reply = (Result<Vec<Vec<f32>>, EmbedError>, Timing);

struct Job {
    texts: Vec<String>,
    ticket: Ticket,
    reply: oneshot::Sender<Reply>,
}

/// Counters beyond the gate's: how well batching works.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EmbedderStats {
    pub threads: usize,
    pub batches: u64,
    pub texts: u64,
    pub largest_batch: u64,
}

pub struct EmbedderShared {
    gate: Gate,
    model: LocalModel,
    queue: Mutex<VecDeque<Job>>,
    max_batch: usize,
    threads: usize,
    batches: AtomicU64,
    texts: AtomicU64,
    largest_batch: AtomicU64,
    batch_size: metrics::Histogram,
}

impl std::fmt::Debug for EmbedderShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedderShared")
            .field("model", &self.model)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl EmbedderShared {
    /// Loads the model from `dir` (a clear error when files are missing).
    pub fn load(dir: &Path, cfg: &EmbedderConfig) -> Result<Arc<Self>, String> {
        let model = LocalModel::load(dir)?;
        Ok(Arc::new(Self {
            gate: Gate::new("embedder", cfg.mailbox_capacity.max(1)),
            model,
            queue: Mutex::new(VecDeque::new()),
            max_batch: cfg.max_batch.max(1),
            threads: cfg.threads.max(1),
            batches: AtomicU64::new(0),
            texts: AtomicU64::new(0),
            largest_batch: AtomicU64::new(0),
            batch_size: metrics::histogram!("health_agent_embedder_batch_texts"),
        }))
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    pub fn stats(&self) -> EmbedderStats {
        EmbedderStats {
            threads: self.threads,
            batches: self.batches.load(Ordering::Relaxed),
            texts: self.texts.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// Takes queued jobs up to `max_batch` texts (at least one job).
    fn take_batch(&self) -> Vec<Job> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        let mut n = 0;
        while let Some(front) = q.front() {
            if !out.is_empty() && n + front.texts.len() > self.max_batch {
                break;
            }
            n += front.texts.len();
            out.extend(q.pop_front());
        }
        out
    }

    /// Embeds one batch of jobs and answers each.
    fn run_batch(&self, mut jobs: Vec<Job>) {
        for j in &mut jobs {
            j.ticket.start();
        }
        let texts: Vec<String> = jobs.iter().flat_map(|j| j.texts.iter().cloned()).collect();
        let n = texts.len() as u64;
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.texts.fetch_add(n, Ordering::Relaxed);
        self.largest_batch.fetch_max(n, Ordering::Relaxed);
        self.batch_size.record(n as f64);
        // A panic in the model must not kill this thread's actor (a dead
        // SyncArbiter actor fails every later message).
        let out = std::panic::catch_unwind(AssertUnwindSafe(|| self.model.embed(&texts)))
            .unwrap_or_else(|_| Err("panicked".into()));
        match out {
            Ok(vectors) => {
                let mut it = vectors.into_iter();
                for j in jobs {
                    let v: Vec<Vec<f32>> = it.by_ref().take(j.texts.len()).collect();
                    let timing = j.ticket.timing();
                    let _ = j.reply.send((Ok(v), timing));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "local embedder failed");
                for j in jobs {
                    let timing = j.ticket.timing();
                    let _ = j.reply.send((Err(EmbedError::Model(e.clone())), timing));
                }
            }
        }
    }
}

/// "Jobs are queued": embed them.
#[derive(Message)]
#[rtype(result = "()")]
struct Drain;

struct EmbedderActor {
    shared: Arc<EmbedderShared>,
}

impl Actor for EmbedderActor {
    type Context = SyncContext<Self>;
}

impl Handler<Drain> for EmbedderActor {
    type Result = ();

    fn handle(&mut self, _: Drain, _: &mut SyncContext<Self>) {
        // Every job sends a Drain; a thread takes all that queued meanwhile,
        // so later Drains often find nothing.
        loop {
            let jobs = self.shared.take_batch();
            if jobs.is_empty() {
                return;
            }
            self.shared.run_batch(jobs);
        }
    }
}

/// The embedder, shared by every worker (its threads are the process's).
#[derive(Clone)]
pub struct EmbedderHandle {
    addr: Addr<EmbedderActor>,
    shared: Arc<EmbedderShared>,
}

impl std::fmt::Debug for EmbedderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared.fmt(f)
    }
}

impl EmbedderHandle {
    /// Starts the SyncArbiter threads; call once, inside the actix System.
    pub fn start(shared: Arc<EmbedderShared>) -> Self {
        let for_actors = Arc::clone(&shared);
        let addr = SyncArbiter::start(shared.threads, move || EmbedderActor {
            shared: Arc::clone(&for_actors),
        });
        Self { addr, shared }
    }

    pub fn shared(&self) -> &Arc<EmbedderShared> {
        &self.shared
    }

    pub fn gate(&self) -> &Gate {
        &self.shared.gate
    }

    /// Admits a job of several embeddings (a chat) once.
    pub fn admit_job(&self) -> Result<Admission, ActorError> {
        self.shared.gate.admit_job()
    }

    /// Embeds `texts`, admitted on their own.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ticket = self.shared.gate.admit()?;
        self.embed_with(texts, ticket).await
    }

    /// Embeds `texts` under an admission already held.
    pub async fn embed_with(
        &self,
        texts: Vec<String>,
        ticket: Ticket,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = oneshot::channel();
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Job {
                texts,
                ticket,
                reply: tx,
            });
        // `do_send` ignores the mailbox bound, but the gate already bounds
        // what can be queued here.
        self.addr.do_send(Drain);
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok((out, timing))) => {
                crate::trace::record("embedder", "embed", timing);
                out
            }
            Ok(Err(_)) => Err(ActorError::Panicked { actor: "embedder" }.into()),
            Err(_) => Err(EmbedError::Model("timed out after 30 s".into())),
        }
    }

    /// Embeds on the calling thread (benchmarks, the re-embed command).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        self.shared.model.embed(texts)
    }
}
