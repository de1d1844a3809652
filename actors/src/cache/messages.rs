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

/// Sent by `CacheHandle` after a load: store a value with a time to live.
#[derive(Message)]
#[rtype(result = "(Result<(), CacheError>, Timing)")]
pub struct Set {
    pub key: String,
    pub value: Vec<u8>,
    pub ttl: Duration,
    pub ticket: Ticket,
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
