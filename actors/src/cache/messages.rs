use std::time::Duration;

use actix::Message;

use super::CacheError;
use crate::gate::{Ticket, Timing};

/// Sent by `CacheHandle` on an L1 miss: the value under a full (namespaced) key.
#[derive(Message)]
#[rtype(result = "(Result<Option<Vec<u8>>, CacheError>, Timing)")]
pub struct Get {
    pub key: String,
    /// Also announce the key here (a refill's check: other instances drop
    /// copies they may have filled from the old row meanwhile).
    pub announce: Option<String>,
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
