use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use actors::trace::{self, Hop};

use super::request_id::RequestId;
use crate::state::AppState;

/// Buckets for `health_agent_request_duration_ms`: 1 ms to 10 s.
pub const DURATION_BUCKETS_MS: &[f64] = &[
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// Times every request, records it for Prometheus and the metrics actor, and
/// logs one `SLOW REQUEST` line, with the per-actor breakdown, past the threshold.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (res, hops) = trace::scope(next.call(req)).await;
    let res = res?;
    let elapsed = started.elapsed();
    let Some(state) = state else { return Ok(res) };

    let status = res.status().as_u16();
    let method = res.request().method().clone();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let ms = elapsed.as_secs_f64() * 1e3;
    let key = (method, route, status);
    let (histogram, counter) = series(&key);
    histogram.record(ms);
    counter.increment(1);
    let (method, route) = (key.0.as_str(), key.1.as_str());

    let threshold = state.shared().slow_threshold();
    let slow = elapsed >= threshold;
    if slow {
        metrics::counter!("health_agent_slow_requests_total").increment(1);
        let request_id = res
            .request()
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        tracing::warn!(
            method = %method,
            route = %route,
            status,
            total_ms = format_args!("{ms:.1}"),
            request_id = %request_id,
            breakdown = %breakdown(&hops),
            "SLOW REQUEST {method} {route} {status} {ms:.1}ms (threshold {}ms) [{}]",
            threshold.as_millis(),
            breakdown(&hops),
        );
    }
    state.metrics.request_completed(status, elapsed, slow);
    Ok(res)
}

type Series = (metrics::Histogram, metrics::Counter);
type SeriesKey = (actix_web::http::Method, String, u16);

thread_local! {
    /// This worker's handles per (method, route, status): registering by
    /// labels costs three label strings and two registry lookups a request.
    static SERIES: RefCell<HashMap<SeriesKey, Series>> = RefCell::default();
}

fn series(key: &SeriesKey) -> Series {
    SERIES.with(|m| {
        let mut m = m.borrow_mut();
        if let Some(s) = m.get(key) {
            return s.clone();
        }
        let labels = [
            ("method", key.0.as_str().to_owned()),
            ("route", key.1.clone()),
            ("status", key.2.to_string()),
        ];
        let s = (
            metrics::histogram!("health_agent_request_duration_ms", &labels),
            metrics::counter!("health_agent_requests_total", &labels),
        );
        m.insert(key.clone(), s.clone());
        s
    })
}

/// `db.get_user queued=0.1ms served=12.3ms; llm.complete queued=...`
fn breakdown(hops: &[Hop]) -> String {
    let mut out = String::new();
    for (i, h) in hops.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let _ = write!(
            out,
            "{}.{} queued={:.1}ms served={:.1}ms",
            h.actor,
            h.operation,
            h.timing.queued.as_secs_f64() * 1e3,
            h.timing.served.as_secs_f64() * 1e3
        );
    }
    if out.is_empty() {
        out.push_str("no actor calls");
    }
    out
}
