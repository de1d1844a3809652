//! The OpenAPI document at `/api/openapi.json` and Swagger UI at `/api/docs`:
//! every route with its method, security, error responses, and response
//! schemas that match what the routes really answer.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp, KEY};

/// The operations anyone may call; every other one needs an API key.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/api/health"),
    ("GET", "/livez"),
    ("GET", "/readyz"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/docs"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(app: &TestApp) -> Value {
    // No key: the document is public.
    let res = app
        .client
        .get(format!("{}/api/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    res.json().await.expect("the document is JSON")
}

/// `(METHOD, path) -> operation` for every operation in the document.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) {
                ops.push((method.to_uppercase(), path.clone(), op));
            }
        }
    }
    ops
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("a local $ref");
            resolve(
                doc,
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("{r} dangles")),
            )
        }
        None => v,
    }
}

#[actix_web::test]
async fn the_document_is_openapi_3_and_lists_every_route_with_its_method() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;

    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "{version}");
    assert_eq!(doc["info"]["title"], "Health Agent API");

    // The route table writes the document: a route the app serves is
    // documented by construction (`every_documented_operation_is_served_as_documented`
    // checks the other way). The API.md contract's routes are all there.
    assert!(
        operations(&doc).len() >= 48,
        "{} operations",
        operations(&doc).len()
    );

    // Every operation names its path parameters, and POSTs with a body
    // describe it.
    for (method, path, op) in operations(&doc) {
        let params: Vec<&Value> = op["parameters"]
            .as_array()
            .map(|a| a.iter().map(|p| resolve(&doc, p)).collect())
            .unwrap_or_default();
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path"),
                "{method} {path}: path parameter {name} undocumented"
            );
        }
    }
    for (method, path) in [
        ("post", "/api/v1/chat"),
        ("post", "/api/v1/users"),
        ("patch", "/api/v1/users/{user_id}/profile"),
        ("patch", "/api/v1/users/{user_id}/preferences"),
        ("post", "/api/v1/users/{user_id}/food"),
        ("post", "/api/v1/users/{user_id}/reminders"),
    ] {
        let body = &doc["paths"][path][method]["requestBody"];
        assert_eq!(body["required"], true, "{method} {path}");
        assert!(
            body["content"]["application/json"]["schema"].is_object(),
            "{method} {path}: no JSON body schema"
        );
    }
    let food_query = &doc["paths"]["/api/v1/users/{user_id}/food"]["get"]["parameters"];
    assert!(
        food_query
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "date" && p["in"] == "query"),
        "the food day's `date` query is undocumented"
    );
}

#[actix_web::test]
async fn every_documented_operation_is_served_as_documented() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    for (method, path, op) in operations(&doc) {
        let url = path
            .replace("{user_id}", "nobody")
            .replace("{id}", "0b6f4c1e-8f5e-4d8a-9d67-3f1f1f9c2a10")
            .replace("{meal_id}", "0b6f4c1e-8f5e-4d8a-9d67-3f1f1f9c2a10");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let res = app.request(method.clone(), &url).send().await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert!(
            !(status == StatusCode::NOT_FOUND && body.contains("no route for")),
            "{method} {path} is not served: {body}"
        );
        assert!(
            !status.is_server_error(),
            "{method} {path}: {status} {body}"
        );

        // Without a key: refused unless the document says it is public.
        let public = op["security"].as_array().is_some_and(Vec::is_empty);
        let res = app
            .client
            .request(method.clone(), format!("{}{url}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status() == StatusCode::UNAUTHORIZED,
            !public,
            "{method} {path} without a key: {}",
            res.status()
        );

        // A method the path does not serve: 405 naming the ones it does.
        let res = app.request(Method::TRACE, &url).send().await.unwrap();
        assert_eq!(res.status(), 405, "TRACE {path}");
        let allow = res.headers()["allow"].to_str().unwrap().to_owned();
        let allowed: BTreeSet<String> = allow.split(", ").map(str::to_lowercase).collect();
        let served: BTreeSet<String> = doc["paths"][&path]
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| METHODS.contains(&m.as_str()))
            .cloned()
            .collect();
        assert_eq!(allowed, served, "Allow of {path}");
        assert_error(res, 405).await;
    }
    let res = app.get("/api/v1/nothing-here").await;
    assert_error(res, 404).await;
}

#[actix_web::test]
async fn every_operation_but_the_probes_and_docs_needs_a_key_and_documents_its_errors() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["type"], "apiKey");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");

    for (method, path, op) in operations(&doc) {
        let public = PUBLIC.contains(&(method.as_str(), path.as_str()));
        let responses = op["responses"].as_object().expect("responses");
        let security = op["security"].as_array().expect("security stated");
        if public {
            assert!(
                security.is_empty(),
                "{method} {path} is public: {security:?}"
            );
            assert!(!responses.contains_key("401"), "{method} {path}");
        } else {
            let names: BTreeSet<&str> = security
                .iter()
                .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
                .collect();
            assert_eq!(
                names,
                BTreeSet::from(["bearer", "api_key"]),
                "{method} {path}: {security:?}"
            );
            for status in ["401", "403", "500"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
        }
        if method == "POST" {
            for status in ["400", "409", "413", "422", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
            let params = op["parameters"].as_array().expect("POST parameters");
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
                "{method} {path}: no Idempotency-Key"
            );
        }
        for (status, response) in responses {
            let response = resolve(&doc, response);
            assert!(
                response["headers"]["X-Request-ID"].is_object(),
                "{method} {path} {status}: no X-Request-ID"
            );
            let code: u16 = status.parse().expect("numeric status");
            // The probes' 503 is their own body (`degraded`, `not_ready`).
            if code >= 400 && !public {
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/ErrorBody",
                    "{method} {path} {status}: not the shared ErrorBody"
                );
            }
            if code == 503 {
                assert!(
                    response["headers"]["Retry-After"].is_object(),
                    "{method} {path} 503 without Retry-After"
                );
            }
        }
    }

    let chat = doc["paths"]["/api/v1/chat"]["post"]["responses"]
        .as_object()
        .unwrap();
    for status in ["502", "504"] {
        assert!(chat.contains_key(status), "chat: no {status}");
    }
    let create = doc["paths"]["/api/v1/users"]["post"]["responses"]
        .as_object()
        .unwrap();
    for status in ["201", "409", "415"] {
        assert!(create.contains_key(status), "create user: no {status}");
    }
}

#[actix_web::test]
async fn swagger_ui_is_served_without_a_key() {
    let app = TestApp::spawn().await;

    let res = app
        .client
        .get(format!("{}/api/docs/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");

    // Without the slash: redirected to it (the page's asset links are
    // relative), which a client follows to the same page.
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_follow
        .get(format!("{}/api/docs", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(res.headers()["location"], "/api/docs/");
    let res = app
        .client
        .get(format!("{}/api/docs", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), html);

    // The page reads this service's document.
    let res = app
        .client
        .get(format!("{}/api/docs/swagger-initializer.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("/api/openapi.json"));

    // Public does not mean the rest opened up.
    let res = app
        .client
        .get(format!("{}/api/v1/users/alice", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// Checks `value` against the document's `schema`: types, required and
/// undeclared properties (an object schema with `properties` and no
/// `additionalProperties` is taken as closed, so a key the code adds without
/// documenting it fails), `enum`, `oneOf` (exactly one), array items.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(options) = schema["oneOf"].as_array() {
        let matching = options
            .iter()
            .filter(|o| check(doc, o, value, at).is_ok())
            .count();
        return if matching == 1 {
            Ok(())
        } else {
            Err(format!("{at}: {value} matches {matching} of {options:?}"))
        };
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    let type_ok = types.iter().any(|t| match *t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    });
    if !type_ok {
        return Err(format!("{at}: {value} is not {types:?}"));
    }
    if let (Some(object), Some(props)) = (value.as_object(), schema["properties"].as_object()) {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                return Err(format!("{at}: required {name} missing from {value}"));
            }
        }
        for (key, v) in object {
            let here = format!("{at}.{key}");
            match (props.get(key), &schema["additionalProperties"]) {
                (Some(p), _) => check(doc, p, v, &here)?,
                (None, Value::Null) | (None, Value::Bool(false)) => {
                    return Err(format!("{here}: undocumented"))
                }
                (None, extra) => check(doc, extra, v, &here)?,
            }
        }
    } else if let Some(object) = value.as_object() {
        if schema["additionalProperties"].is_object() {
            for (key, v) in object {
                check(
                    doc,
                    &schema["additionalProperties"],
                    v,
                    &format!("{at}.{key}"),
                )?;
            }
        }
    }
    if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(doc, schema, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Sends a request and checks its JSON body against what the document says
/// `method path` answers with that status.
async fn conforms(
    app: &TestApp,
    doc: &Value,
    method: Method,
    route: &str,
    url: &str,
    body: Option<Value>,
) -> Value {
    let mut req = app.request(method.clone(), url);
    if let Some(b) = &body {
        req = req.json(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16().to_string();
    let value: Value = res.json().await.unwrap();
    let response = &doc["paths"][route][method.as_str().to_lowercase()]["responses"][&status];
    assert!(
        !response.is_null(),
        "{method} {route}: {status} is undocumented: {value}"
    );
    let schema = &resolve(doc, response)["content"]["application/json"]["schema"];
    if let Err(e) = check(doc, schema, &value, "body") {
        panic!("{method} {route} {status}: {e}");
    }
    value
}

#[actix_web::test]
async fn the_routes_answer_what_the_document_says() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let user = "/api/v1/users/{user_id}";

    conforms(&app, &doc, Method::GET, "/api/health", "/api/health", None).await;
    conforms(&app, &doc, Method::GET, "/livez", "/livez", None).await;
    conforms(&app, &doc, Method::GET, "/readyz", "/readyz", None).await;
    let created = conforms(
        &app,
        &doc,
        Method::POST,
        "/api/v1/users",
        "/api/v1/users",
        Some(json!({"user_id": "alice", "profile": {
            "age": "34", "height_cm": 172.5, "sex": "Female", "timezone": "Europe/Berlin",
            "goals": ["run 10k", "sleep more"], "favourite_food": "pizza", "vegan": true
        }})),
    )
    .await;
    assert_eq!(created["profile"]["age"], 34);
    // The same id again: 409 with the error body.
    conforms(
        &app,
        &doc,
        Method::POST,
        "/api/v1/users",
        "/api/v1/users",
        Some(json!({"user_id": "alice"})),
    )
    .await;
    conforms(&app, &doc, Method::GET, user, "/api/v1/users/alice", None).await;
    conforms(&app, &doc, Method::GET, user, "/api/v1/users/nobody", None).await;
    conforms(&app, &doc, Method::GET, user, "/api/v1/users/a%20b", None).await;
    let profile = format!("{user}/profile");
    conforms(
        &app,
        &doc,
        Method::GET,
        &profile,
        "/api/v1/users/alice/profile",
        None,
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::PATCH,
        &profile,
        "/api/v1/users/alice/profile",
        Some(json!({"field": "goals", "value": "swim"})),
    )
    .await;
    let prefs = format!("{user}/preferences");
    conforms(
        &app,
        &doc,
        Method::PATCH,
        &prefs,
        "/api/v1/users/alice/preferences",
        Some(json!({"preference": "coach_name", "value": "Sam"})),
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::GET,
        &prefs,
        "/api/v1/users/alice/preferences",
        None,
    )
    .await;

    let food = format!("{user}/food");
    for entry in [
        json!({"description": "banana", "quantity": "2 medium"}),
        json!({"description": "mystery stew"}),
        json!({"description": "shake", "calories": 250, "protein_g": 30}),
    ] {
        conforms(
            &app,
            &doc,
            Method::POST,
            &food,
            "/api/v1/users/alice/food",
            Some(entry),
        )
        .await;
    }
    conforms(
        &app,
        &doc,
        Method::GET,
        &food,
        "/api/v1/users/alice/food",
        None,
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::GET,
        &food,
        "/api/v1/users/alice/food?date=2026-6-1",
        None,
    )
    .await;

    let reminders = format!("{user}/reminders");
    let daily = conforms(
        &app,
        &doc,
        Method::POST,
        &reminders,
        "/api/v1/users/alice/reminders",
        Some(json!({"type": "daily", "message": "vitamins", "daily_time": "08:30"})),
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::POST,
        &reminders,
        "/api/v1/users/alice/reminders",
        Some(json!({"type": "one_time", "message": "doctor",
                    "trigger_time": "2099-01-01T08:00:00Z", "timezone": "America/New_York"})),
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::GET,
        &reminders,
        "/api/v1/users/alice/reminders",
        None,
    )
    .await;
    let id = daily["id"].as_str().unwrap();
    let complete = format!("{reminders}/{{id}}/complete");
    conforms(
        &app,
        &doc,
        Method::POST,
        &complete,
        &format!("/api/v1/users/alice/reminders/{id}/complete"),
        None,
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::GET,
        &format!("{reminders}/{{id}}/status"),
        &format!("/api/v1/users/alice/reminders/{id}/status"),
        None,
    )
    .await;

    for tail in ["xp", "streaks", "achievements"] {
        conforms(
            &app,
            &doc,
            Method::GET,
            &format!("{user}/{tail}"),
            &format!("/api/v1/users/alice/{tail}"),
            None,
        )
        .await;
    }
    let chat = conforms(
        &app,
        &doc,
        Method::POST,
        "/api/v1/chat",
        "/api/v1/chat",
        Some(json!({"user_id": "alice", "message": "I love pizza"})),
    )
    .await;
    assert_eq!(chat["user_id"], "alice");
    conforms(
        &app,
        &doc,
        Method::GET,
        "/api/v1/metrics",
        "/api/v1/metrics",
        None,
    )
    .await;
}

#[actix_web::test]
async fn the_meal_and_formula_routes_answer_what_the_document_says() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    app.create_user("mia").await;
    let meals = "/api/v1/users/{user_id}/meals";
    let meal = format!("{meals}/{{meal_id}}");
    let saved = conforms(
        &app,
        &doc,
        Method::POST,
        meals,
        "/api/v1/users/mia/meals",
        Some(json!({"name": "Usual breakfast", "keywords": ["oats"],
                    "foods": [{"description": "oats"}, {"description": "mystery stew"},
                              {"description": "shake", "calories": 250}]})),
    )
    .await;
    let id = saved["id"].as_str().unwrap().to_owned();
    let at = format!("/api/v1/users/mia/meals/{id}");
    conforms(
        &app,
        &doc,
        Method::POST,
        meals,
        "/api/v1/users/mia/meals",
        Some(json!({"name": ""})),
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::GET,
        meals,
        "/api/v1/users/mia/meals",
        None,
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::GET,
        meals,
        "/api/v1/users/nobody/meals",
        None,
    )
    .await;
    conforms(&app, &doc, Method::GET, &meal, &at, None).await;
    conforms(
        &app,
        &doc,
        Method::PATCH,
        &meal,
        &at,
        Some(json!({"description": "weekdays"})),
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::GET,
        &format!("{meals}/search"),
        "/api/v1/users/mia/meals/search?q=oats",
        None,
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::GET,
        &format!("{meals}/suggestions"),
        "/api/v1/users/mia/meals/suggestions",
        None,
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::POST,
        &format!("{meal}/log"),
        &format!("{at}/log"),
        Some(json!({"portion": 2})),
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::GET,
        "/api/formulas",
        "/api/formulas?user_id=mia",
        None,
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::GET,
        "/api/formulas/{id}",
        &format!("/api/formulas/{id}?user_id=mia"),
        None,
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::POST,
        "/api/formulas/{id}/use",
        &format!("/api/formulas/{id}/use?user_id=mia"),
        Some(json!({})),
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::POST,
        "/api/formulas/suggestions",
        "/api/formulas/suggestions?user_id=mia",
        Some(json!({})),
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::GET,
        "/api/formulas/search",
        "/api/formulas/search?user_id=mia&keyword=oats",
        None,
    )
    .await;
    conforms(
        &app,
        &doc,
        Method::GET,
        &meal,
        &at.replace(&id, "nope"),
        None,
    )
    .await;
}

#[actix_web::test]
async fn bearer_and_x_api_key_from_the_document_both_work() {
    // The schemes the document declares are the ones the server accepts.
    let app = TestApp::spawn().await;
    app.create_user("alice").await;
    let url = format!("{}/api/v1/users/alice/xp", app.address);
    for (name, value) in [
        ("Authorization", format!("Bearer {KEY}")),
        ("X-API-Key", KEY.to_string()),
    ] {
        let res = app
            .client
            .get(&url)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}");
    }
}

/// Found by schemathesis: PostgreSQL stores no NUL character (in text or
/// jsonb), so such text was a 500. It is bad input: 400 naming the field,
/// and nothing stored.
#[actix_web::test]
async fn text_with_a_nul_character_is_a_400_naming_the_field_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let nul = "a\u{0}b";
    let cases = [
        (
            Method::POST,
            "/api/v1/users",
            json!({"user_id": "bob", "profile": {"notes": nul}}),
            "profile.notes",
        ),
        (
            Method::POST,
            "/api/v1/users",
            json!({"user_id": "bob", "profile": {"goals": ["ok", nul]}}),
            "profile.goals",
        ),
        (
            Method::POST,
            "/api/v1/chat",
            json!({"user_id": "bob", "message": nul}),
            "message",
        ),
        (
            Method::POST,
            "/api/v1/chat",
            json!({"user_id": "bob", "message": "hi",
                   "message_history": [{"role": "user", "content": nul}]}),
            "message_history[0].content",
        ),
    ];
    for (method, path, body, field) in cases {
        let res = app.request(method, path).json(&body).send().await.unwrap();
        let body = assert_error(res, 400).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{field}: ")),
            "{path}: {detail}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);

    assert_eq!(app.create_user("alice").await.status(), 201);
    let user = "/api/v1/users/alice";
    let cases = [
        (
            Method::PATCH,
            format!("{user}/profile"),
            json!({"field": "name", "value": nul}),
            "value",
        ),
        (
            Method::PATCH,
            format!("{user}/preferences"),
            json!({"preference": "coach_name", "value": nul}),
            "value",
        ),
        (
            Method::POST,
            format!("{user}/food"),
            json!({"description": nul}),
            "description",
        ),
        (
            Method::POST,
            format!("{user}/food"),
            json!({"description": "banana", "quantity": nul}),
            "quantity",
        ),
        (
            Method::POST,
            format!("{user}/reminders"),
            json!({"type": "daily", "message": nul, "daily_time": "08:00"}),
            "message",
        ),
    ];
    for (method, path, body, field) in cases {
        let res = app.request(method, &path).json(&body).send().await.unwrap();
        let body = assert_error(res, 400).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{field}: ")),
            "{path}: {detail}"
        );
        assert!(detail.contains("NUL"), "{path}: {detail}");
    }
    let user = app
        .db()
        .await
        .query_one(
            "SELECT profile::text, preferences::text FROM users WHERE user_id = 'alice'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(user.get::<_, String>(0), "{}");
    assert_eq!(user.get::<_, String>(1), "{}");
    for table in [
        "food_entries",
        "reminders",
        "conversation_history",
        "xp_events",
    ] {
        let n = app.count(&format!("SELECT count(*) FROM {table}")).await;
        assert_eq!(n, 0, "{table}");
    }
}
