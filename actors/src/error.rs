//! Errors every actor family shares: admission and mailbox failures.

use std::time::Duration;

/// Why a message could not be served by an actor.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum ActorError {
    /// The gate is full: the caller should answer 503 with `Retry-After`.
    #[error("{actor} actor is overloaded")]
    Overloaded {
        actor: &'static str,
        retry_after: Duration,
    },
    /// The actor is gone or restarting and dropped the message.
    #[error("{actor} actor is unavailable")]
    Unavailable { actor: &'static str },
    /// The handler panicked; the actor was restarted.
    #[error("{actor} actor failed while serving the message")]
    Panicked { actor: &'static str },
}

impl ActorError {
    pub fn from_mailbox(actor: &'static str, _err: actix::MailboxError) -> Self {
        ActorError::Unavailable { actor }
    }
}
