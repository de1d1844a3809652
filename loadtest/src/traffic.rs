//! What one virtual user does: create its user, then repeat weighted actions
//! in the original service's mix (chat 5, food 2, reminders 2, gamification 1).

use std::sync::OnceLock;

use goose::prelude::*;
use serde_json::{json, Value};

/// Set once in `main`, before the attack starts.
pub struct Traffic {
    pub api_key: String,
    /// User ids are `{prefix}-{n}`; the same prefix on a rerun meets 409s.
    pub user_prefix: String,
}

static TRAFFIC: OnceLock<Traffic> = OnceLock::new();

pub fn init(t: Traffic) {
    let _ = TRAFFIC.set(t);
}

fn traffic() -> Result<&'static Traffic, Box<TransactionError>> {
    TRAFFIC
        .get()
        .ok_or_else(|| Box::new(TransactionError::Custom("traffic not initialised".into())))
}

/// A user keeps its newest reminders only, so listing them stays one page
/// however long the run.
const KEEP_REMINDERS: usize = 5;

#[derive(Default, Clone)]
struct Session {
    user_id: String,
    reminders: Vec<String>,
    turn: usize,
}

/// Most questions need one model call; "I had ..." makes the mock call the
/// `log_food` tool first (two model calls and a food row), as people do.
const CHAT_MESSAGES: &[&str] = &[
    "How am I doing with protein today?",
    "Any tips for a better breakfast?",
    "I love hiking on weekends",
    "What should I eat before a run?",
    "How many calories are left for today?",
    "Give me a quick snack idea",
    "I had a banana",
    "I am vegetarian",
    "How is my streak going?",
    "Remind me why fibre matters",
];

const FOODS: &[&str] = &[
    "1 medium banana",
    "2 eggs",
    "1 cup rice",
    "170g chicken breast",
    "1 apple",
    "greek yogurt",
];

pub fn scenario(wait: (u64, u64)) -> Result<Scenario, GooseError> {
    let mut s = scenario!("HealthAgentUser")
        .register_transaction(
            transaction!(create_user)
                .set_on_start()
                .set_name("create user"),
        )
        .register_transaction(transaction!(chat).set_weight(5)?.set_name("chat"))
        .register_transaction(transaction!(food).set_weight(2)?.set_name("food"))
        .register_transaction(transaction!(reminders).set_weight(2)?.set_name("reminders"))
        .register_transaction(
            transaction!(gamification)
                .set_weight(1)?
                .set_name("gamification"),
        );
    if wait.1 > 0 {
        s = s.set_wait_time(
            std::time::Duration::from_secs(wait.0),
            std::time::Duration::from_secs(wait.1),
        )?;
    }
    Ok(s)
}

/// One request with the API key; statuses in `also_ok` count as successes
/// besides 2xx. Returns the JSON body of a successful answer (Null if none).
/// `name` groups the request in the reports (goose adds the method), short
/// enough for goose's console columns: `/food (day)` is GET
/// /api/v1/users/{id}/food, `/reminder status` is GET .../reminders/{id}/status.
async fn send(
    user: &mut GooseUser,
    method: GooseMethod,
    path: &str,
    name: &str,
    body: Option<&Value>,
    also_ok: &[u16],
) -> Result<Option<Value>, Box<TransactionError>> {
    let t = traffic()?;
    let mut rb = user
        .get_request_builder(&method, path)?
        .header("X-API-Key", &t.api_key);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let req = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(name)
        .set_request_builder(rb)
        .build();
    let mut goose = user.request(req).await?;
    let response = match goose.response {
        Ok(r) => r,
        Err(_) => return Ok(None),
    };
    let status = response.status().as_u16();
    // Read the whole body: the connection is reused only after it.
    let text = response.text().await.unwrap_or_default();
    if also_ok.contains(&status) {
        user.set_success(&mut goose.request)?;
    }
    if !goose.request.success {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn session(user: &mut GooseUser) -> Result<&mut Session, Box<TransactionError>> {
    user.get_session_data_mut::<Session>()
        .ok_or_else(|| Box::new(TransactionError::Custom("no session".into())))
}

fn pick<'a>(items: &[&'a str], n: usize) -> &'a str {
    items[n % items.len()]
}

async fn create_user(user: &mut GooseUser) -> TransactionResult {
    let user_id = format!("{}-{}", traffic()?.user_prefix, user.weighted_users_index);
    let body = json!({"user_id": user_id, "profile": {"timezone": "Europe/Paris", "name": "Load"}});
    send(
        user,
        GooseMethod::Post,
        "/api/v1/users",
        "/users",
        Some(&body),
        &[409],
    )
    .await?;
    user.set_session_data(Session {
        user_id,
        turn: user.weighted_users_index,
        ..Session::default()
    });
    Ok(())
}

async fn chat(user: &mut GooseUser) -> TransactionResult {
    let s = session(user)?;
    s.turn += 1;
    let body = json!({"user_id": s.user_id, "message": pick(CHAT_MESSAGES, s.turn)});
    send(
        user,
        GooseMethod::Post,
        "/api/v1/chat",
        "/chat",
        Some(&body),
        &[],
    )
    .await?;
    Ok(())
}

async fn food(user: &mut GooseUser) -> TransactionResult {
    let s = session(user)?;
    s.turn += 1;
    let path = format!("/api/v1/users/{}/food", s.user_id);
    let body = json!({"description": pick(FOODS, s.turn)});
    send(user, GooseMethod::Post, &path, "/food", Some(&body), &[]).await?;
    send(user, GooseMethod::Get, &path, "/food (day)", None, &[]).await?;
    Ok(())
}

async fn reminders(user: &mut GooseUser) -> TransactionResult {
    let s = session(user)?;
    s.turn += 1;
    let base = format!("/api/v1/users/{}/reminders", s.user_id);
    let body = json!({
        "type": "daily",
        "message": "drink water",
        "daily_time": format!("{:02}:{:02}", 6 + s.turn % 14, (s.turn * 7) % 60),
        "timezone": "Europe/Paris",
    });
    let created = send(
        user,
        GooseMethod::Post,
        &base,
        "/reminders",
        Some(&body),
        &[],
    )
    .await?;
    send(
        user,
        GooseMethod::Get,
        &base,
        "/reminders (list)",
        None,
        &[],
    )
    .await?;
    let Some(id) = created
        .as_ref()
        .and_then(|v| v.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Ok(());
    };
    send(
        user,
        GooseMethod::Get,
        &format!("{base}/{id}/status"),
        "/reminder status",
        None,
        &[],
    )
    .await?;
    send(
        user,
        GooseMethod::Post,
        &format!("{base}/{id}/complete"),
        "/reminder complete",
        None,
        &[],
    )
    .await?;
    let s = session(user)?;
    s.reminders.push(id);
    if s.reminders.len() > KEEP_REMINDERS {
        let oldest = s.reminders.remove(0);
        send(
            user,
            GooseMethod::Delete,
            &format!("{base}/{oldest}"),
            "/reminder",
            None,
            &[],
        )
        .await?;
    }
    Ok(())
}

async fn gamification(user: &mut GooseUser) -> TransactionResult {
    let id = session(user)?.user_id.clone();
    for what in ["xp", "streaks", "achievements"] {
        send(
            user,
            GooseMethod::Get,
            &format!("/api/v1/users/{id}/{what}"),
            &format!("/{what}"),
            None,
            &[],
        )
        .await?;
    }
    Ok(())
}
