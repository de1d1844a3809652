//! Anthropic Messages API wire format (`POST /v1/messages`).

use serde::Deserialize;
use serde_json::{json, Value};

use super::{ChatRequest, Role, ToolCall};

pub(crate) const VERSION: &str = "2023-06-01";

/// The request body. System turns join the system prompt; tool results are
/// user turns of `tool_result` blocks; consecutive turns of one role merge
/// into one message, as the API wants roles to alternate.
pub(crate) fn encode(model: &str, req: &ChatRequest) -> Value {
    let mut system = req.system.clone();
    let mut messages: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for turn in &req.turns {
        let (role, blocks) = match turn.role {
            Role::System => {
                if !turn.content.is_empty() {
                    if !system.is_empty() {
                        system.push_str("\n\n");
                    }
                    system.push_str(&turn.content);
                }
                continue;
            }
            Role::User => ("user", text_block(&turn.content).into_iter().collect()),
            Role::Assistant => {
                let mut blocks: Vec<Value> = text_block(&turn.content).into_iter().collect();
                blocks.extend(turn.tool_calls.iter().map(|c| {
                    json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
                }));
                ("assistant", blocks)
            }
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": turn.tool_call_id.clone().unwrap_or_default(),
                    "content": turn.content,
                })],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some((r, existing)) if *r == role => existing.extend(blocks),
            _ => messages.push((role, blocks)),
        }
    }
    let mut body = json!({
        "model": model,
        "max_tokens": req.max_tokens,
        "messages": messages
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect::<Vec<_>>(),
    });
    if !system.is_empty() {
        body["system"] = json!(system);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
    }
    body
}

/// The API rejects empty text blocks.
fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({"type": "text", "text": text}))
}

#[derive(Deserialize)]
struct Response {
    content: Vec<Block>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// Thinking and other blocks the coach does not use.
    #[serde(other)]
    Other,
}

/// The answer's text (text blocks joined), tool calls and model.
pub(crate) fn decode(body: &[u8]) -> Result<(String, Vec<ToolCall>, Option<String>), String> {
    let res: Response = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for block in res.content {
        match block {
            Block::Text { text } => texts.push(text),
            Block::ToolUse { id, name, input } => calls.push(ToolCall {
                id,
                name,
                arguments: if input.is_null() { json!({}) } else { input },
            }),
            Block::Other => {}
        }
    }
    Ok((texts.join("\n"), calls, res.model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ChatTurn, ToolSpec};
    use std::sync::Arc;

    fn turn(role: Role, content: &str) -> ChatTurn {
        ChatTurn {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    fn request() -> ChatRequest {
        ChatRequest {
            system: "You are a coach.".into(),
            turns: vec![
                turn(Role::System, "- memory: likes eggs"),
                turn(Role::User, "I ate two eggs"),
                ChatTurn {
                    role: Role::Assistant,
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "toolu_1".into(),
                        name: "log_food".into(),
                        arguments: json!({"description": "two eggs"}),
                    }],
                    tool_call_id: None,
                },
                ChatTurn {
                    role: Role::Tool,
                    content: "logged 140 kcal".into(),
                    tool_calls: Vec::new(),
                    tool_call_id: Some("toolu_1".into()),
                },
                turn(Role::User, "thanks"),
            ],
            tools: Arc::new([ToolSpec {
                name: "log_food".into(),
                description: "Log a meal".into(),
                parameters: json!({"type": "object", "properties": {"description": {"type": "string"}}}),
            }]),
            max_tokens: 512,
            offline_reply: None,
            offline_tool_calls: Vec::new(),
        }
    }

    #[test]
    fn a_conversation_with_a_tool_round_trip_encodes_as_blocks() {
        let body = encode("claude-x", &request());
        assert_eq!(body["model"], "claude-x");
        assert_eq!(body["max_tokens"], 512);
        assert_eq!(body["system"], "You are a coach.\n\n- memory: likes eggs");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "I ate two eggs"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "log_food",
                     "input": {"description": "two eggs"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "logged 140 kcal"},
                    {"type": "text", "text": "thanks"}
                ]}
            ])
        );
        assert_eq!(body["tools"][0]["name"], "log_food");
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    }

    #[test]
    fn no_tools_and_no_system_leave_the_fields_out() {
        let req = ChatRequest {
            system: String::new(),
            turns: vec![turn(Role::User, "hi")],
            tools: Arc::new([]),
            max_tokens: 16,
            offline_reply: None,
            offline_tool_calls: Vec::new(),
        };
        let body = encode("m", &req);
        assert!(body.get("system").is_none() && body.get("tools").is_none());
    }

    #[test]
    fn a_text_answer_decodes() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
            "content":[{"type":"text","text":"Hello"},{"type":"text","text":"there"}],
            "stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}"#;
        let (text, calls, model) = decode(body).unwrap();
        assert_eq!(text, "Hello\nthere");
        assert!(calls.is_empty());
        assert_eq!(model.as_deref(), Some("claude-x"));
    }

    #[test]
    fn a_tool_use_decodes_to_a_tool_call_and_unknown_blocks_are_skipped() {
        let body = br#"{"content":[{"type":"thinking","thinking":"hmm"},
            {"type":"text","text":"Logging it."},
            {"type":"tool_use","id":"toolu_9","name":"log_food","input":{"description":"toast"}}]}"#;
        let (text, calls, model) = decode(body).unwrap();
        assert_eq!(text, "Logging it.");
        assert_eq!(
            calls,
            vec![ToolCall {
                id: "toolu_9".into(),
                name: "log_food".into(),
                arguments: json!({"description": "toast"}),
            }]
        );
        assert_eq!(model, None);
    }

    #[test]
    fn a_body_that_is_not_a_message_is_malformed() {
        assert!(decode(b"{\"content\": [").is_err());
        assert!(decode(br#"{"type":"error"}"#).is_err());
    }
}
