use std::sync::Arc;

use actix::{AsyncContext, Handler, ResponseFuture};
use chrono::Utc;

use super::{
    Deliver, Poll, ReminderError, ReminderScheduler, BATCH, DELIVER_DEADLINE, POLL_DEADLINE,
};
use crate::db::ops::reminders::{ClaimDueReminders, SetWebhookStatus, WebhookStatus};
use crate::gate::Timing;
use crate::supervise::serve;

impl Handler<Poll> for ReminderScheduler {
    type Result = ResponseFuture<(Result<usize, ReminderError>, Timing)>;

    fn handle(&mut self, msg: Poll, ctx: &mut Self::Context) -> Self::Result {
        let Poll { ticket, busy } = msg;
        let shared = Arc::clone(&self.shared);
        let db = self.db.clone();
        let me = ctx.address();
        let work = async move {
            let _busy = busy;
            let webhook = shared.webhook.is_some();
            // A place for each delivery before claiming: a claimed firing
            // must never wait for one.
            let mut tickets = Vec::new();
            let limit = if webhook {
                // Only this scheduler admits through the gate, so the room
                // seen here can only grow while it admits.
                let s = shared.gate.stats().snapshot();
                let room = s.mailbox_capacity as i64 - s.mailbox_depth - s.in_flight;
                for _ in 0..room.clamp(0, BATCH) {
                    match shared.gate.admit() {
                        Ok(t) => tickets.push(t),
                        Err(_) => break,
                    }
                }
                tickets.len() as i64
            } else {
                BATCH
            };
            if limit == 0 {
                return Ok(0);
            }
            let claimed = db
                .run(ClaimDueReminders {
                    now: Utc::now(),
                    limit,
                    webhook,
                })
                .await;
            let fired = match claimed {
                Ok(fired) => fired,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming due reminders failed");
                    return Err(e.into());
                }
            };
            let n = fired.len();
            if n > 0 {
                metrics::counter!("health_agent_reminders_fired_total").increment(n as u64);
                tracing::debug!(fired = n, "reminders fired");
            }
            if webhook {
                for (fired, ticket) in fired.into_iter().zip(tickets) {
                    me.do_send(Deliver { fired, ticket });
                }
            }
            Ok(n)
        };
        serve(
            "reminders",
            "poll",
            ticket,
            POLL_DEADLINE,
            ctx.address().recipient(),
            work,
        )
    }
}

impl Handler<Deliver> for ReminderScheduler {
    type Result = ResponseFuture<(Result<WebhookStatus, ReminderError>, Timing)>;

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) -> Self::Result {
        let Deliver { fired, ticket } = msg;
        let shared = Arc::clone(&self.shared);
        let db = self.db.clone();
        let work = async move {
            let status = match &shared.webhook {
                Some(hook) => hook.deliver(&fired).await,
                // Polls send deliveries only when there is a webhook.
                None => return Ok(WebhookStatus::Failed),
            };
            metrics::counter!("health_agent_reminder_webhooks_total", "status" => status.as_str())
                .increment(1);
            db.run(SetWebhookStatus {
                completion_id: fired.completion_id,
                status,
            })
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "recording a webhook outcome failed"))?;
            Ok(status)
        };
        serve(
            "reminders",
            "deliver",
            ticket,
            DELIVER_DEADLINE,
            ctx.address().recipient(),
            work,
        )
    }
}
