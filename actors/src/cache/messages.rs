use std::time::Duration;

use actix::Message;

use super::CacheError;
use crate::gate::{Ticket, Timing};

/// Sent by `CacheHandle` on an L1 miss: the value under a full (namespaced) key.
#[derive(Message)]
#[rtype(result = "(Result<Option<Vec<u8>>, CacheError>, Timing)")]
pub struct Get {
    pub key: String,
    pub ticket: Ticket,
}

/// Sent by a write-through's check: the values under full keys, read in one
/// round trip that also announces them on `channel` (every instance drops
/// copies it may have filled from the old rows meanwhile).
#[derive(Message)]
#[rtype(result = "(Result<Vec<Option<Vec<u8>>>, CacheError>, Timing)")]
pub struct Recheck {
    pub keys: Vec<String>,
    pub channel: String,
    pub ticket: Ticket,
}

/// Sent by `CacheHandle`: store a value with a time to live.
#[derive(Message)]
#[rtype(result = "(Result<(), CacheError>, Timing)")]
pub struct Set {
    pub key: String,
    pub value: Vec<u8>,
    pub ttl: Duration,
    pub when: SetWhen,
    /// Announce the key here so other instances drop their L1 copies.
    pub announce: Option<String>,
    pub ticket: Ticket,
}

/// When a [`Set`] may store its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetWhen {
    Always,
    /// `SET … NX`: a read-through fill must never overwrite a value a writer
    /// stored meanwhile (the fill may have read the row before the write).
    Absent,
    /// Only while the key still holds these bytes (compare-and-set, one Lua
    /// script): a refill's check must never replace a newer write-through
    /// that landed after it looked.
    Holds(Vec<u8>),
}

/// Sent by `CacheHandle::invalidate`: remove keys and announce it on
/// `channel` so other instances drop their L1 copies.
#[derive(Message)]
#[rtype(result = "(Result<(), CacheError>, Timing)")]
pub struct Delete {
    pub keys: Vec<String>,
    pub channel: String,
    pub ticket: Ticket,
}

/// Sent by `CacheHandle::refresh`: in one round trip, store each `Some`
/// value (with its time to live), delete each `None`, and announce all the
/// keys on `channel`.
#[derive(Message)]
#[rtype(result = "(Result<(), CacheError>, Timing)")]
pub struct Replace {
    pub entries: Vec<(String, Option<Vec<u8>>, Duration)>,
    pub channel: String,
    pub ticket: Ticket,
}

/// Sent by `CacheHandle::rate_limit`: take one request from a GCRA bucket
/// (one Lua script, so instances sharing the key never race).
#[derive(Message)]
#[rtype(result = "(Result<RateDecision, CacheError>, Timing)")]
pub struct RateLimit {
    /// Full (namespaced) key of the bucket.
    pub key: String,
    /// Microseconds between two requests at the sustained rate.
    pub interval_us: u64,
    /// Requests that may come at once (the bucket's size).
    pub capacity: u32,
    /// Requests admitted without the bucket (while Redis was away), charged
    /// before this one is decided.
    pub owed: u32,
    /// Told, when the reply missed its deadline, whether Redis ran the
    /// script after all (it runs to its end or to `SETTLE_WITHIN`).
    pub ran: tokio::sync::oneshot::Sender<bool>,
    pub ticket: Ticket,
}

/// What a bucket said about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Requests left right now.
    pub remaining: u32,
    /// When a refused request may be retried.
    pub retry_after: Duration,
    /// When the bucket is full again.
    pub reset: Duration,
}

/// Sent by `CacheHandle::announce_instance`: record this instance as alive
/// (a sorted set scored by Redis' clock), forget ones silent for `ttl`,
/// and count the rest.
#[derive(Message)]
#[rtype(result = "(Result<u64, CacheError>, Timing)")]
pub struct Announce {
    pub key: String,
    pub instance: String,
    pub ttl: Duration,
    pub ticket: Ticket,
}
