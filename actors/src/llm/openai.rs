//! OpenAI Chat Completions and Embeddings wire format, also spoken by
//! Ollama, vLLM and llama.cpp's server.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{ChatRequest, Role, ToolCall};

/// The request body. `max_tokens_field` is `max_completion_tokens` for
/// OpenAI (its newer models refuse `max_tokens`) and `max_tokens` for
/// compatible servers, most of which know only that.
pub(crate) fn encode(model: &str, req: &ChatRequest, max_tokens_field: &str) -> Value {
    let mut messages = Vec::with_capacity(req.turns.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for turn in &req.turns {
        messages.push(match turn.role {
            Role::System => json!({"role": "system", "content": turn.content}),
            Role::User => json!({"role": "user", "content": turn.content}),
            Role::Assistant if turn.tool_calls.is_empty() => {
                json!({"role": "assistant", "content": turn.content})
            }
            Role::Assistant => json!({
                "role": "assistant",
                "content": if turn.content.is_empty() { Value::Null } else { json!(turn.content) },
                "tool_calls": turn.tool_calls.iter().map(|c| json!({
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments.to_string()},
                })).collect::<Vec<_>>(),
            }),
            Role::Tool => json!({
                "role": "tool",
                "tool_call_id": turn.tool_call_id.clone().unwrap_or_default(),
                "content": turn.content,
            }),
        });
    }
    let mut body = json!({"model": model, "messages": messages});
    body[max_tokens_field] = json!(req.max_tokens);
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect();
    }
    body
}

#[derive(Deserialize)]
struct Response {
    choices: Vec<Choice>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    /// Some compatible servers leave it out.
    #[serde(default)]
    id: Option<String>,
    function: Function,
}

#[derive(Deserialize)]
struct Function {
    name: String,
    /// A JSON string per the spec; some compatible servers send the object.
    #[serde(default)]
    arguments: Value,
}

/// The first choice's text, tool calls and the model.
pub(crate) fn decode(body: &[u8]) -> Result<(String, Vec<ToolCall>, Option<String>), String> {
    let res: Response = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Some(choice) = res.choices.into_iter().next() else {
        return Err("no choices".into());
    };
    let calls = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let arguments = match c.function.arguments {
                Value::String(s) if s.trim().is_empty() => json!({}),
                Value::String(s) => serde_json::from_str(&s)
                    .map_err(|e| format!("arguments of {} are not JSON: {e}", c.function.name))?,
                Value::Null => json!({}),
                v => v,
            };
            Ok(ToolCall {
                id: c.id.unwrap_or_else(|| format!("call_{i}")),
                name: c.function.name,
                arguments,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((choice.message.content.unwrap_or_default(), calls, res.model))
}

/// `POST /v1/embeddings`; `dimensions` only where the server understands it.
pub(crate) fn encode_embeddings(model: &str, texts: &[String], dimensions: Option<usize>) -> Value {
    let mut body = json!({"model": model, "input": texts});
    if let Some(d) = dimensions {
        body["dimensions"] = json!(d);
    }
    body
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

/// One vector per input, in input order, each of `dim` numbers.
pub(crate) fn decode_embeddings(
    body: &[u8],
    n: usize,
    dim: usize,
) -> Result<Vec<Vec<f32>>, String> {
    let res: EmbeddingsResponse =
        serde_json::from_slice(body).map_err(|e| format!("embeddings: {e}"))?;
    if res.data.len() != n {
        return Err(format!(
            "embeddings: {} vectors for {n} inputs",
            res.data.len()
        ));
    }
    let mut out: Vec<Option<Vec<f32>>> = vec![None; n];
    for (i, item) in res.data.into_iter().enumerate() {
        let at = item.index.unwrap_or(i);
        if item.embedding.len() != dim {
            return Err(format!(
                "embeddings: {} dimensions, expected {dim}",
                item.embedding.len()
            ));
        }
        match out.get_mut(at) {
            Some(slot @ None) => *slot = Some(item.embedding),
            _ => return Err(format!("embeddings: bad or repeated index {at}")),
        }
    }
    out.into_iter()
        .map(|v| v.ok_or_else(|| "embeddings: missing index".to_string()))
        .collect()
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

    #[test]
    fn a_conversation_with_a_tool_round_trip_encodes_as_messages() {
        let req = ChatRequest {
            system: "You are a coach.".into(),
            turns: vec![
                turn(Role::User, "I had oatmeal"),
                ChatTurn {
                    role: Role::Assistant,
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "call_1".into(),
                        name: "log_food".into(),
                        arguments: json!({"description": "oatmeal"}),
                    }],
                    tool_call_id: None,
                },
                ChatTurn {
                    role: Role::Tool,
                    content: "logged".into(),
                    tool_calls: Vec::new(),
                    tool_call_id: Some("call_1".into()),
                },
                turn(Role::Assistant, "Done!"),
            ],
            tools: Arc::new([ToolSpec {
                name: "log_food".into(),
                description: "Log a meal".into(),
                parameters: json!({"type": "object"}),
            }]),
            max_tokens: 300,
            offline_reply: None,
            offline_tool_calls: Vec::new(),
        };
        let body = encode("gpt-x", &req, "max_completion_tokens");
        assert_eq!(body["model"], "gpt-x");
        assert_eq!(body["max_completion_tokens"], 300);
        assert!(body.get("max_tokens").is_none());
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "You are a coach."},
                {"role": "user", "content": "I had oatmeal"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "log_food", "arguments": "{\"description\":\"oatmeal\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "logged"},
                {"role": "assistant", "content": "Done!"}
            ])
        );
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "function": {
                "name": "log_food", "description": "Log a meal", "parameters": {"type": "object"}}}])
        );
        let compat = encode("llama", &req, "max_tokens");
        assert_eq!(compat["max_tokens"], 300);
    }

    #[test]
    fn a_text_answer_decodes() {
        let body = br#"{"id":"c1","object":"chat.completion","model":"gpt-x",
            "choices":[{"index":0,"message":{"role":"assistant","content":"Hi!","tool_calls":null},
            "finish_reason":"stop"}]}"#;
        let (text, calls, model) = decode(body).unwrap();
        assert_eq!((text.as_str(), calls.len()), ("Hi!", 0));
        assert_eq!(model.as_deref(), Some("gpt-x"));
    }

    #[test]
    fn tool_calls_decode_from_strings_and_from_objects() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[
            {"id":"call_7","type":"function","function":{"name":"log_food","arguments":"{\"description\":\"rice\"}"}},
            {"type":"function","function":{"name":"log_food","arguments":{"description":"beans"}}}
        ]}}]}"#;
        let (text, calls, _) = decode(body).unwrap();
        assert_eq!(text, "");
        assert_eq!(calls[0].id, "call_7");
        assert_eq!(calls[0].arguments, json!({"description": "rice"}));
        assert_eq!(calls[1].id, "call_1");
        assert_eq!(calls[1].arguments, json!({"description": "beans"}));
    }

    #[test]
    fn broken_bodies_and_arguments_are_malformed() {
        assert!(decode(b"{\"choices\": [").is_err());
        assert!(decode(br#"{"choices":[]}"#).is_err());
        let bad_args = br#"{"choices":[{"message":{"tool_calls":[
            {"id":"c","function":{"name":"log_food","arguments":"{not json"}}]}}]}"#;
        assert!(decode(bad_args).unwrap_err().contains("log_food"));
    }

    #[test]
    fn embeddings_encode_and_decode_in_input_order() {
        let body = encode_embeddings("emb", &["a".into(), "b".into()], Some(3));
        assert_eq!(
            body,
            json!({"model": "emb", "input": ["a", "b"], "dimensions": 3})
        );
        let res = br#"{"data":[{"index":1,"embedding":[0,1,0]},{"index":0,"embedding":[1,0,0]}]}"#;
        let v = decode_embeddings(res, 2, 3).unwrap();
        assert_eq!(v, vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]]);
        assert!(decode_embeddings(res, 2, 4)
            .unwrap_err()
            .contains("dimensions"));
        assert!(decode_embeddings(res, 3, 3).is_err());
    }
}
