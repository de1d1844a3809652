//! Per-API-key request budgets shared by every instance: a GCRA bucket per
//! key and budget in Redis (one Lua script per request through the
//! CacheActor, so instances never race). The chat has its own budget (model
//! cost); every other authenticated route shares the other.
//!
//! Redis unreachable (or the cache disabled): each instance keeps a local
//! bucket with the budget divided by the instances that announced
//! themselves in the last 30 s: never unlimited, never failing a request.
//! The two books are kept in step, so switching between them admits no
//! extra requests: what Redis admits is mirrored into the local bucket, and
//! what the local bucket admits is charged to Redis once it answers again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage as _};
use actors::cache::{CacheHandle, RateDecision, Undecided};

use super::auth::{hex, ClientKey};
use crate::config::RateLimitSettings;
use crate::error::ApiError;
use crate::state::AppState;

pub const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
pub const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// How long an instance counts as alive after it last announced itself,
/// and how often it announces.
pub const INSTANCE_TTL: Duration = Duration::from_secs(30);
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(5);
const INSTANCES_KEY: &str = "rl:instances";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    Api,
    Chat,
}

impl Budget {
    fn name(self) -> &'static str {
        match self {
            Budget::Api => "api",
            Budget::Chat => "chat",
        }
    }
}

/// One budget's numbers: `per_minute` sustained, `capacity` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
    pub capacity: u32,
}

impl Rate {
    /// Microseconds between two requests at the sustained rate.
    pub fn interval_us(self) -> u64 {
        60_000_000 / u64::from(self.per_minute.max(1))
    }

    /// This instance's share when it has to decide alone.
    pub fn share(self, instances: u64) -> Rate {
        let n = instances.max(1);
        let part = |v: u32| ((u64::from(v) / n).max(1)) as u32;
        Rate {
            per_minute: part(self.per_minute),
            capacity: part(self.capacity),
        }
    }
}

/// The live limits (reloadable) and the local fallback buckets.
pub struct RateLimiter {
    per_minute: AtomicU32,
    chat_per_minute: AtomicU32,
    burst: AtomicU32,
    instances: AtomicU64,
    instance_id: String,
    epoch: Instant,
    /// Local buckets; keys are authenticated API keys only, so this stays
    /// small.
    local: Mutex<HashMap<(Budget, [u8; 32]), LocalBucket>>,
    /// Sum of the buckets' `owed`: while Redis answers it is 0, and a
    /// request need not take the lock to find nothing owed.
    owed_total: AtomicU64,
}

#[derive(Default)]
struct LocalBucket {
    /// Theoretical arrival time, µs since `RateLimiter::epoch`.
    tat: u64,
    /// Admitted here while Redis was away, not yet charged to it.
    owed: u32,
}

impl RateLimiter {
    pub fn new(s: &RateLimitSettings) -> Self {
        let me = Self {
            per_minute: AtomicU32::new(0),
            chat_per_minute: AtomicU32::new(0),
            burst: AtomicU32::new(0),
            instances: AtomicU64::new(1),
            instance_id: uuid::Uuid::new_v4().simple().to_string(),
            epoch: Instant::now(),
            local: Mutex::new(HashMap::new()),
            owed_total: AtomicU64::new(0),
        };
        me.set(s);
        me
    }

    /// Applies new limits (start-up and live reload).
    pub fn set(&self, s: &RateLimitSettings) {
        self.per_minute.store(s.per_minute, Ordering::Relaxed);
        self.chat_per_minute
            .store(s.chat_per_minute, Ordering::Relaxed);
        self.burst.store(s.burst, Ordering::Relaxed);
    }

    /// The budget's rate, or `None` when it is off.
    pub fn rate(&self, budget: Budget) -> Option<Rate> {
        let per_minute = match budget {
            Budget::Api => self.per_minute.load(Ordering::Relaxed),
            Budget::Chat => self.chat_per_minute.load(Ordering::Relaxed),
        };
        if per_minute == 0 {
            return None;
        }
        let burst = self.burst.load(Ordering::Relaxed);
        let capacity = if burst == 0 { per_minute } else { burst };
        Some(Rate {
            per_minute,
            capacity,
        })
    }

    /// Instances seen in the last `INSTANCE_TTL` (at least this one).
    pub fn instances(&self) -> u64 {
        self.instances.load(Ordering::Relaxed).max(1)
    }

    fn with_bucket<T>(
        &self,
        budget: Budget,
        key: &[u8; 32],
        f: impl FnOnce(&mut LocalBucket, u64) -> T,
    ) -> T {
        let now = self.epoch.elapsed().as_micros() as u64;
        let mut buckets = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        f(buckets.entry((budget, *key)).or_default(), now)
    }

    /// A local GCRA bucket, this instance's share of `rate`. What it admits
    /// the caller owes to the shared bucket (see `settle`).
    pub fn decide_locally(&self, budget: Budget, key: &[u8; 32], rate: Rate) -> RateDecision {
        let rate = rate.share(self.instances());
        let interval = rate.interval_us();
        let window = interval * u64::from(rate.capacity);
        self.with_bucket(budget, key, |b, now| {
            let start = b.tat.max(now);
            let next = start + interval;
            let us = Duration::from_micros;
            if next - now > window {
                return RateDecision {
                    allowed: false,
                    remaining: 0,
                    retry_after: us(next - now - window),
                    reset: us(start - now),
                };
            }
            b.tat = next;
            RateDecision {
                allowed: true,
                remaining: ((window - (next - now)) / interval) as u32,
                retry_after: Duration::ZERO,
                reset: us(next - now),
            }
        })
    }

    /// Takes what this instance admitted alone, to charge it to Redis.
    pub fn take_owed(&self, budget: Budget, key: &[u8; 32]) -> u32 {
        if self.owed_total.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let owed = self.with_bucket(budget, key, |b, _| std::mem::take(&mut b.owed));
        self.owed_total
            .fetch_sub(u64::from(owed), Ordering::Relaxed);
        owed
    }

    /// Records requests Redis has not charged: admitted here alone, or a
    /// debt a call carried that Redis never ran.
    pub fn owe(&self, budget: Budget, key: &[u8; 32], owed: u32) {
        if owed > 0 {
            self.with_bucket(budget, key, |b, _| b.owed = b.owed.saturating_add(owed));
            self.owed_total
                .fetch_add(u64::from(owed), Ordering::Relaxed);
        }
    }

    /// Mirrors a request Redis admitted into the local bucket, so a switch
    /// to deciding alone starts from what this instance already took (at
    /// most a full bucket: Redis may rightly give it more than its share).
    pub fn mirror(&self, budget: Budget, key: &[u8; 32], rate: Rate) {
        let rate = rate.share(self.instances());
        let interval = rate.interval_us();
        let window = interval * u64::from(rate.capacity);
        self.with_bucket(budget, key, |b, now| {
            b.tat = (b.tat.max(now) + interval).min(now + window);
        });
    }

    /// Announces this instance every `ANNOUNCE_EVERY` and keeps the count
    /// of live instances for the fallback. Runs on the current arbiter.
    pub fn spawn_announcer(self: &Arc<Self>, cache: CacheHandle) {
        let me = Arc::downgrade(self);
        actix::spawn(async move {
            let mut tick = tokio::time::interval(ANNOUNCE_EVERY);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { break };
                if let Ok(n) = cache
                    .announce_instance(INSTANCES_KEY, &me.instance_id, INSTANCE_TTL)
                    .await
                {
                    me.instances.store(n.max(1), Ordering::Relaxed);
                    metrics::gauge!("health_agent_rate_limit_instances").set(n as f64);
                }
            }
        });
    }
}

/// `debt` (what the unanswered call carried, and what the fallback admitted)
/// is owed to Redis unless Redis ran the call after all: then it charged
/// both, and owing them would charge them twice. Until that is known the
/// debt is owed nowhere, so no other request can pay it meanwhile.
fn settle(
    limiter: &Arc<RateLimiter>,
    budget: Budget,
    key: [u8; 32],
    debt: u32,
    mut undecided: Undecided,
) {
    if debt == 0 {
        return;
    }
    match undecided.ran_now() {
        Some(true) => {}
        Some(false) => limiter.owe(budget, &key, debt),
        None => {
            let limiter = Arc::clone(limiter);
            actix::spawn(async move {
                if !undecided.ran().await {
                    limiter.owe(budget, &key, debt);
                }
            });
        }
    }
}

fn budget_for(req: &ServiceRequest) -> Budget {
    if req.path() == "/api/v1/chat" {
        Budget::Chat
    } else {
        Budget::Api
    }
}

fn set_headers(headers: &mut HeaderMap, rate: Rate, d: &RateDecision) {
    let num = |v: u64| HeaderValue::from(v);
    headers.insert(LIMIT, num(u64::from(rate.per_minute)));
    headers.insert(REMAINING, num(u64::from(d.remaining)));
    headers.insert(RESET, num(ceil_secs(d.reset)));
    if let Ok(v) =
        HeaderValue::from_str(&format!("{};w=60;burst={}", rate.per_minute, rate.capacity))
    {
        headers.insert(POLICY, v);
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_micros().div_ceil(1_000_000) as u64
}

/// Inside `auth` (it needs the key) and outside idempotency (a refused
/// request claims no key). Unauthenticated routes are not limited.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let key = req.extensions().get::<ClientKey>().copied();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (Some(key), Some(state)) = (key, state) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let budget = budget_for(&req);
    let limiter = &state.shared().rate_limiter;
    let Some(rate) = limiter.rate(budget) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    // The bucket is named by part of the key's digest, never the key.
    let bucket = format!("rl:{}:{}", budget.name(), hex(&key.digest[..16]));
    let owed = limiter.take_owed(budget, &key.digest);
    let decision = match state
        .cache
        .rate_limit(&bucket, rate.interval_us(), rate.capacity, owed)
        .await
    {
        Ok(d) => {
            if d.allowed {
                limiter.mirror(budget, &key.digest, rate);
            }
            d
        }
        Err(undecided) => {
            metrics::counter!("health_agent_rate_limit_fallback_total", "budget" => budget.name())
                .increment(1);
            let d = limiter.decide_locally(budget, &key.digest, rate);
            settle(
                limiter,
                budget,
                key.digest,
                owed + u32::from(d.allowed),
                undecided,
            );
            d
        }
    };
    let outcome = if decision.allowed {
        "allowed"
    } else {
        "limited"
    };
    metrics::counter!(
        "health_agent_rate_limit_decisions_total",
        "budget" => budget.name(),
        "outcome" => outcome
    )
    .increment(1);
    if !decision.allowed {
        let retry = Duration::from_secs(ceil_secs(decision.retry_after).max(1));
        let mut res = req.error_response(ApiError::RateLimited {
            what: budget.name(),
            retry_after: retry,
        });
        set_headers(res.headers_mut(), rate, &decision);
        return Ok(res.map_into_right_body());
    }
    let mut res = next.call(req).await?;
    set_headers(res.headers_mut(), rate, &decision);
    Ok(res.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(&RateLimitSettings {
            per_minute,
            chat_per_minute: 0,
            burst,
        })
    }

    #[test]
    fn a_local_bucket_allows_its_burst_then_refuses_with_a_retry_time() {
        let l = limiter(60, 5);
        let rate = l.rate(Budget::Api).unwrap();
        let key = [7u8; 32];
        let allowed = (0..20)
            .filter(|_| l.decide_locally(Budget::Api, &key, rate).allowed)
            .count();
        assert_eq!(allowed, 5);
        let d = l.decide_locally(Budget::Api, &key, rate);
        assert!(!d.allowed);
        assert!(d.retry_after <= Duration::from_secs(1), "{d:?}");
        assert!(l.rate(Budget::Chat).is_none(), "0 = off");
    }

    #[test]
    fn what_one_book_admitted_counts_in_the_other() {
        let l = limiter(60, 3);
        let rate = l.rate(Budget::Api).unwrap();
        let key = [3u8; 32];
        // Two admitted by Redis leave one for the local bucket.
        l.mirror(Budget::Api, &key, rate);
        l.mirror(Budget::Api, &key, rate);
        let local = (0..5)
            .filter(|_| l.decide_locally(Budget::Api, &key, rate).allowed)
            .count();
        assert_eq!(local, 1);
        // A debt is paid once; one Redis did not take is owed again.
        assert_eq!(l.take_owed(Budget::Api, &key), 0, "deciding owes nothing");
        l.owe(Budget::Api, &key, 1);
        assert_eq!(l.take_owed(Budget::Api, &key), 1);
        assert_eq!(l.take_owed(Budget::Api, &key), 0);
        l.owe(Budget::Api, &key, 1);
        assert_eq!(l.take_owed(Budget::Api, &key), 1, "kept when Redis failed");
        // Mirroring never locks a key out for longer than a full bucket.
        for _ in 0..100 {
            l.mirror(Budget::Chat, &key, rate);
        }
        let d = l.decide_locally(Budget::Chat, &key, rate);
        assert!(d.retry_after <= Duration::from_secs(1), "{d:?}");
    }

    #[test]
    fn the_fallback_splits_the_budget_between_instances() {
        let l = limiter(600, 0);
        l.instances.store(3, Ordering::Relaxed);
        let rate = l.rate(Budget::Api).unwrap();
        let allowed = (0..1000)
            .filter(|_| l.decide_locally(Budget::Api, &[1; 32], rate).allowed)
            .count();
        assert_eq!(allowed, 200);
    }
}
