//! The reminder webhook: one JSON POST per firing, retried with exponential
//! backoff and jitter on failures that may pass (connect errors, timeouts,
//! 429, 5xx), honouring `Retry-After`, within [`RETRY_BUDGET`].

use std::time::{Duration, Instant};

use backoff::ExponentialBackoff;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Serialize;

use super::{RETRY_BUDGET, WEBHOOK_TIMEOUT};
use crate::db::ops::reminders::{FiredReminder, WebhookStatus};

/// The body POSTed for one firing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookPayload {
    pub reminder_id: String,
    pub user_id: String,
    pub message: String,
    pub scheduled_for: String,
    pub triggered_at: String,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl From<&FiredReminder> for WebhookPayload {
    fn from(f: &FiredReminder) -> Self {
        Self {
            reminder_id: f.reminder_id.clone(),
            user_id: f.user_id.clone(),
            message: f.message.clone(),
            scheduled_for: rfc3339(f.scheduled_for),
            triggered_at: rfc3339(f.triggered_at),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
}

impl Webhook {
    pub fn new(url: &str) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            // A redirected POST would turn into a GET; treat it as a failure.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            url: url.to_owned(),
        })
    }

    /// POSTs the firing until the receiver accepts it (2xx), refuses it for
    /// good (another status, or a request that cannot be sent), or the retry
    /// budget runs out.
    pub async fn deliver(&self, fired: &FiredReminder) -> WebhookStatus {
        let payload = WebhookPayload::from(fired);
        let started = Instant::now();
        let policy = ExponentialBackoff {
            initial_interval: Duration::from_millis(250),
            randomization_factor: 0.5,
            multiplier: 2.0,
            max_interval: Duration::from_secs(10),
            max_elapsed_time: Some(RETRY_BUDGET),
            ..ExponentialBackoff::default()
        };
        let attempt = || async {
            let res = self.client.post(&self.url).json(&payload).send().await;
            classify(res, started.elapsed())
        };
        match backoff::future::retry(policy, attempt).await {
            Ok(()) => WebhookStatus::Delivered,
            Err(why) => {
                tracing::warn!(
                    reminder_id = %fired.reminder_id,
                    completion_id = fired.completion_id,
                    %why,
                    "reminder webhook failed"
                );
                WebhookStatus::Failed
            }
        }
    }
}

/// Whether an attempt succeeded, may be retried (and when), or failed for good.
fn classify(
    res: Result<reqwest::Response, reqwest::Error>,
    elapsed: Duration,
) -> Result<(), backoff::Error<String>> {
    match res {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS || r.status().is_server_error() => {
            let why = format!("webhook answered {}", r.status());
            match retry_after(r.headers(), Utc::now()) {
                // backoff's own budget does not apply to a given delay.
                Some(wait) if elapsed + wait > RETRY_BUDGET => Err(backoff::Error::permanent(
                    format!("{why}; Retry-After {wait:?} is past the retry budget"),
                )),
                Some(wait) => Err(backoff::Error::retry_after(why, wait)),
                None => Err(backoff::Error::transient(why)),
            }
        }
        Ok(r) => Err(backoff::Error::permanent(format!(
            "webhook answered {}",
            r.status()
        ))),
        Err(e) if e.is_connect() || e.is_timeout() => Err(backoff::Error::transient(format!(
            "webhook unreachable: {e}"
        ))),
        Err(e) => Err(backoff::Error::permanent(format!(
            "webhook request failed: {e}"
        ))),
    }
}

/// `Retry-After` as a delay: whole seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(raw).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(&headers("3"), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers("Mon, 01 Jun 2026 12:00:07 GMT"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers("Mon, 01 Jun 2026 11:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
