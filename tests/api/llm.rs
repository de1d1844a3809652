//! The LLM actor against the mock provider (`health_agent_tools::mock_llm`):
//! retries, Retry-After, timeouts, malformed answers, circuit breaking,
//! fallback, both wire formats with tool calls, embeddings, and keys that
//! never reach an error.

use std::time::{Duration, Instant};

use actors::llm::{
    ChatRequest, ChatTurn, LlmConfig, LlmError, LlmHandle, LlmShared, ProviderConfig, ProviderKind,
    Role, ToolCall, ToolSpec,
};
use health_agent::error::ApiError;
use health_agent_tools::mock_llm::{start_mock, MockOptions};
use serde_json::{json, Value};

const KEY: &str = "sk-test-SECRET-4242";

fn provider(kind: ProviderKind, port: u16) -> ProviderConfig {
    ProviderConfig {
        kind,
        model: "mock-model".into(),
        base_url: format!("http://127.0.0.1:{port}"),
        api_key: KEY.into(),
    }
}

fn config(kind: ProviderKind, port: u16) -> LlmConfig {
    LlmConfig {
        timeout: Duration::from_secs(2),
        primary: provider(kind, port),
        retry_budget: Duration::from_secs(3),
        ..LlmConfig::default()
    }
}

fn llm(cfg: LlmConfig) -> LlmHandle {
    LlmHandle::start(LlmShared::new(&cfg).expect("llm setup"))
}

async fn mock(opts: MockOptions) -> u16 {
    start_mock(opts).await.expect("mock starts").0
}

async fn mock_stats(port: u16) -> Value {
    crate::helpers::mock_json(&format!("http://127.0.0.1:{port}"), "/__mock/stats").await
}

async fn mock_config(port: u16, patch: Value) {
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/__mock/config"))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

fn user(text: &str) -> ChatTurn {
    ChatTurn {
        role: Role::User,
        content: text.into(),
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

fn chat(text: &str) -> ChatRequest {
    ChatRequest {
        system: "You are a coach.".into(),
        turns: vec![user(text)],
        tools: Vec::new().into(),
        max_tokens: 256,
        offline_reply: None,
        offline_tool_calls: Vec::new(),
    }
}

fn log_food_tool() -> ToolSpec {
    ToolSpec {
        name: "log_food".into(),
        description: "Log what the user ate".into(),
        parameters: json!({"type": "object", "properties": {"description": {"type": "string"}},
                           "required": ["description"]}),
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[actix_web::test]
async fn a_500_is_retried_and_the_second_attempt_answers() {
    let port = mock(MockOptions::default()).await;
    mock_config(port, json!({"script": ["error"]})).await;
    let llm = llm(config(ProviderKind::OpenAi, port));

    let c = llm.complete(chat("hello")).await.expect("retried");

    assert_eq!(c.text, "Mock reply to: hello");
    assert_eq!(
        (c.provider.as_str(), c.model.as_str()),
        ("openai", "mock-model")
    );
    let s = mock_stats(port).await;
    assert_eq!(
        s["by_endpoint"]["/v1/chat/completions"],
        json!({"error": 1, "ok": 1})
    );
    let p = &llm.shared().provider_stats()[0];
    assert_eq!((p.calls, p.failures, p.requests), (1, 0, 2));
}

#[actix_web::test]
async fn a_429_waits_the_retry_after_then_succeeds() {
    let port = mock(MockOptions::default()).await;
    mock_config(port, json!({"script": ["rate_limited"]})).await;
    let llm = llm(config(ProviderKind::Anthropic, port));

    let started = Instant::now();
    let c = llm.complete(chat("hi")).await.expect("after Retry-After");

    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.provider, "anthropic");
    let s = mock_stats(port).await;
    assert_eq!(
        s["by_endpoint"]["/v1/messages"],
        json!({"rate_limited": 1, "ok": 1})
    );
}

#[actix_web::test]
async fn a_retry_after_beyond_the_budget_is_answered_at_once_as_rate_limited() {
    let port = mock(MockOptions::default()).await;
    mock_config(port, json!({"script": ["rate_limited"]})).await;
    let llm = llm(LlmConfig {
        retry_budget: Duration::from_millis(300),
        ..config(ProviderKind::OpenAi, port)
    });

    let started = Instant::now();
    let e = llm.complete(chat("hi")).await.unwrap_err();

    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(
        matches!(e, LlmError::RateLimited { retry_after } if retry_after == Duration::from_secs(1)),
        "{e:?}"
    );
}

#[actix_web::test]
async fn a_provider_that_never_answers_times_out() {
    let port = mock(MockOptions {
        timeout_rate: 1.0,
        ..MockOptions::default()
    })
    .await;
    let llm = llm(LlmConfig {
        timeout: Duration::from_millis(300),
        retry_budget: Duration::ZERO,
        ..config(ProviderKind::OpenAi, port)
    });

    let started = Instant::now();
    let e = llm.complete(chat("hello?")).await.unwrap_err();

    assert!(matches!(e, LlmError::Timeout), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn broken_json_is_malformed_names_the_provider_and_is_not_retried() {
    let port = mock(MockOptions {
        malformed_rate: 1.0,
        ..MockOptions::default()
    })
    .await;
    let llm = llm(config(ProviderKind::Anthropic, port));

    let e = llm.complete(chat("hi")).await.unwrap_err();

    assert!(
        matches!(&e, LlmError::Malformed(why) if why.starts_with("anthropic")),
        "{e:?}"
    );
    assert_eq!(mock_stats(port).await["total"], 1);
}

#[actix_web::test]
async fn a_refused_connection_is_retried_then_unavailable() {
    let port = closed_port();
    let llm = llm(LlmConfig {
        retry_budget: Duration::from_millis(400),
        ..config(ProviderKind::OpenAiCompatible, port)
    });

    let e = llm.complete(chat("hi")).await.unwrap_err();

    assert!(
        matches!(&e, LlmError::Unavailable { provider, .. } if provider == "openai_compatible"),
        "{e:?}"
    );
    let p = &llm.shared().provider_stats()[0];
    assert!(p.requests >= 2, "retried: {p:?}");
    assert_eq!(p.failures, 1);
}

#[actix_web::test]
async fn the_circuit_opens_fails_fast_without_calling_and_closes_after_a_good_probe() {
    // Arrange: every answer is a 500; no retries, so each call is one request.
    let port = mock(MockOptions {
        error_rate: 1.0,
        ..MockOptions::default()
    })
    .await;
    let llm = llm(LlmConfig {
        retry_budget: Duration::ZERO,
        circuit_failures: 3,
        circuit_open: Duration::from_millis(400),
        ..config(ProviderKind::OpenAi, port)
    });
    for _ in 0..3 {
        let e = llm.complete(chat("hi")).await.unwrap_err();
        assert!(matches!(e, LlmError::Upstream { status: 500, .. }), "{e:?}");
    }
    assert!(llm.shared().provider_stats()[0].circuit_open);

    // Act: the circuit is open.
    let started = Instant::now();
    let e = llm.complete(chat("hi")).await.unwrap_err();

    // Assert: at once, and the mock never saw it.
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(e, LlmError::Unavailable { .. }), "{e:?}");
    assert_eq!(mock_stats(port).await["total"], 3);

    // The provider recovers; after the open period one probe goes through.
    mock_config(port, json!({"error_rate": 0.0})).await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    let c = llm
        .complete(chat("back?"))
        .await
        .expect("the probe succeeds");
    assert_eq!(c.text, "Mock reply to: back?");
    let p = &llm.shared().provider_stats()[0];
    assert!(!p.circuit_open, "{p:?}");
    assert_eq!((p.calls, p.failures), (4, 3));
}

#[actix_web::test]
async fn the_fallback_answers_when_the_primary_is_down_and_then_straight_away() {
    let port = mock(MockOptions::default()).await;
    let llm = llm(LlmConfig {
        retry_budget: Duration::from_millis(400),
        circuit_failures: 1,
        fallback: Some(provider(ProviderKind::Anthropic, port)),
        ..config(ProviderKind::OpenAiCompatible, closed_port())
    });

    let c = llm.complete(chat("first")).await.expect("fallback");
    assert_eq!(c.provider, "anthropic");

    // The primary's circuit is open now: no time is spent on it.
    let started = Instant::now();
    let c = llm.complete(chat("second")).await.expect("fallback");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.text, "Mock reply to: second");
    let stats = llm.shared().provider_stats();
    assert_eq!(
        (stats[0].role, stats[0].calls, stats[0].circuit_open),
        ("primary", 1, true)
    );
    assert_eq!((stats[1].role, stats[1].calls), ("fallback", 2));
}

#[actix_web::test]
async fn the_offline_fallback_answers_with_the_routes_reply() {
    let llm = llm(LlmConfig {
        retry_budget: Duration::ZERO,
        fallback: Some(ProviderConfig::offline()),
        ..config(ProviderKind::OpenAi, closed_port())
    });
    assert!(!llm.is_offline() && llm.may_answer_offline());
    let req = ChatRequest {
        offline_reply: Some("You have 1200 kcal left today.".into()),
        ..chat("how am I doing?")
    };

    let c = llm.complete(req).await.expect("offline");

    assert_eq!(c.provider, "offline");
    assert_eq!(c.text, "You have 1200 kcal left today.");
}

#[actix_web::test]
async fn a_provider_failing_30_percent_of_calls_still_answers_99_of_100() {
    let port = mock(MockOptions {
        error_rate: 0.3,
        seed: Some(42),
        ..MockOptions::default()
    })
    .await;
    let llm = llm(LlmConfig {
        retry_budget: Duration::from_secs(10),
        ..config(ProviderKind::OpenAi, port)
    });

    let mut ok = 0;
    for batch in 0..10 {
        let calls = (0..10).map(|i| llm.complete(chat(&format!("q{batch}-{i}"))));
        ok += futures_util::future::join_all(calls)
            .await
            .iter()
            .filter(|r| r.is_ok())
            .count();
    }

    assert!(ok >= 99, "{ok} of 100");
    let s = mock_stats(port).await;
    assert!(
        s["by_endpoint"]["/v1/chat/completions"]["error"]
            .as_u64()
            .unwrap()
            > 10,
        "{s}"
    );
}

#[actix_web::test]
async fn tool_calls_round_trip_in_both_wire_formats() {
    let port = mock(MockOptions::default()).await;
    for kind in [ProviderKind::Anthropic, ProviderKind::OpenAi] {
        let llm = llm(config(kind, port));
        let mut req = ChatRequest {
            tools: vec![log_food_tool()].into(),
            ..chat("I ate 2 eggs and toast.")
        };

        let first = llm.complete(req.clone()).await.expect("tool call");
        assert_eq!(first.tool_calls.len(), 1, "{kind:?}: {first:?}");
        let call: &ToolCall = &first.tool_calls[0];
        assert_eq!(call.name, "log_food");
        assert_eq!(call.arguments, json!({"description": "2 eggs and toast"}));

        req.turns.push(ChatTurn {
            role: Role::Assistant,
            content: first.text.clone(),
            tool_calls: first.tool_calls.clone(),
            tool_call_id: None,
        });
        req.turns.push(ChatTurn {
            role: Role::Tool,
            content: "logged 390 kcal".into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call.id.clone()),
        });
        let last = llm.complete(req).await.expect("final answer");
        assert!(last.tool_calls.is_empty(), "{kind:?}");
        assert!(
            last.text.contains("logged 390 kcal"),
            "{kind:?}: {}",
            last.text
        );
    }
}

#[actix_web::test]
async fn memories_in_the_system_prompt_are_echoed_by_the_mock() {
    let port = mock(MockOptions::default()).await;
    let llm = llm(config(ProviderKind::Anthropic, port));
    let req = ChatRequest {
        system: "Coach.\n- memory: vegetarian\nRules.\n- memory: hates running".into(),
        ..chat("plan my week")
    };

    let c = llm.complete(req).await.unwrap();

    assert_eq!(
        c.text,
        "- memory: vegetarian\n- memory: hates running\nMock reply to: plan my week"
    );
}

#[actix_web::test]
async fn embeddings_come_from_the_provider_or_the_offline_embedder() {
    let texts = vec!["I ate eggs".to_string(), "knee pain".to_string()];
    let offline = llm(LlmConfig::default());
    let v = offline.embed(texts.clone()).await.unwrap();
    assert_eq!(
        v[0],
        health_agent::domain::embedding::embed("I ate eggs", 384)
    );
    assert_eq!(v[1].len(), 384);

    let port = mock(MockOptions::default()).await;
    for kind in [ProviderKind::OpenAi, ProviderKind::OpenAiCompatible] {
        let remote = llm(LlmConfig {
            embeddings: Some(provider(kind, port)),
            ..LlmConfig::default()
        });
        let v = remote.embed(texts.clone()).await.expect("embeddings");
        assert_eq!(v.len(), 2);
        assert!(
            (health_agent::domain::embedding::cosine(
                &v[1],
                &health_agent::domain::embedding::embed("knee pain", 384)
            ) - 1.0)
                .abs()
                < 1e-5
        );
        assert!(remote.embed(Vec::new()).await.unwrap().is_empty());
    }
    assert_eq!(
        mock_stats(port).await["by_endpoint"]["/v1/embeddings"]["ok"],
        2
    );

    // A model of another size cannot go into the vector(384) columns.
    let wrong = llm(LlmConfig {
        embeddings: Some(provider(ProviderKind::OpenAiCompatible, port)),
        embedding_dimensions: 768,
        ..LlmConfig::default()
    });
    let e = wrong.embed(texts).await.unwrap_err();
    assert!(matches!(e, LlmError::Malformed(_)), "{e:?}");
}

#[actix_web::test]
async fn the_key_is_sent_but_never_appears_in_an_error() {
    // The right key is accepted: the header reached the mock.
    let port = mock(MockOptions {
        api_key: Some(KEY.into()),
        ..MockOptions::default()
    })
    .await;
    for kind in [ProviderKind::Anthropic, ProviderKind::OpenAi] {
        llm(config(kind, port))
            .complete(chat("hi"))
            .await
            .expect("authorised");
    }

    let mut errors = Vec::new();
    let wrong_key = mock(MockOptions {
        api_key: Some("another-key".into()),
        ..MockOptions::default()
    })
    .await;
    for kind in [ProviderKind::Anthropic, ProviderKind::OpenAi] {
        let e = llm(config(kind, wrong_key))
            .complete(chat("hi"))
            .await
            .unwrap_err();
        assert!(matches!(e, LlmError::Upstream { status: 401, .. }), "{e:?}");
        errors.push(e);
    }
    let failing = mock(MockOptions {
        error_rate: 1.0,
        ..MockOptions::default()
    })
    .await;
    let broken = mock(MockOptions {
        malformed_rate: 1.0,
        ..MockOptions::default()
    })
    .await;
    for port in [failing, broken, closed_port()] {
        let cfg = LlmConfig {
            retry_budget: Duration::from_millis(200),
            ..config(ProviderKind::OpenAi, port)
        };
        errors.push(llm(cfg).complete(chat("hi")).await.unwrap_err());
    }

    assert_eq!(errors.len(), 5);
    for e in errors {
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(KEY), "key leaked: {shown}");
        // Nor in what a client would see.
        let res = actix_web::ResponseError::error_response(&ApiError::from(e));
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        assert!(!String::from_utf8_lossy(&body).contains(KEY));
    }
}

#[actix_web::test]
async fn the_settings_wire_the_configured_providers() {
    let port = mock(MockOptions::default()).await;
    let settings = crate::helpers::settings(
        "postgres://u:p@127.0.0.1:1/x",
        &vec![
            ("HEALTH_AGENT__LLM__PROVIDER", "openai_compatible".into()),
            ("HEALTH_AGENT__LLM__MODEL", "llama3".into()),
            (
                "HEALTH_AGENT__LLM__BASE_URL",
                format!("http://127.0.0.1:{port}/v1"),
            ),
            ("HEALTH_AGENT__LLM__FALLBACK_PROVIDER", "offline".into()),
        ],
    );
    let cfg = settings.llm_config();
    let llm = llm(cfg);

    let c = llm.complete(chat("configured")).await.unwrap();

    assert_eq!(
        (c.provider.as_str(), c.model.as_str()),
        ("openai_compatible", "llama3")
    );
    let roles: Vec<_> = llm
        .shared()
        .provider_stats()
        .into_iter()
        .map(|p| (p.role, p.name))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("primary", "openai_compatible".to_string()),
            ("fallback", "offline".to_string()),
            ("embeddings", "offline".to_string()),
        ]
    );
}

#[test]
fn the_mock_llm_subcommand_serves_until_killed() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_health-agent"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUN_ENV")
        .args([
            "mock-llm",
            "--port",
            "0",
            "--latency-ms",
            "0",
            "--jitter-ms",
            "0",
        ])
        .args(["--error-rate", "0", "--rate-limit-rate", "0", "--seed", "7"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body: Value = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/v1/chat/completions"))
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "ping"}]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Mock reply to: ping"
    );
}
