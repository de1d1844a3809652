//! The OpenAPI 3.1 document, generated from the route table (`routes`) and
//! the handlers' `#[utoipa::path]` annotations, once at start-up; served at
//! `GET /api/openapi.json` (with Swagger UI at `GET /api/docs/`) by
//! `routes::docs`, which holds the shared vocabulary too.
//!
//! Each handler documents what it answers itself; [`conventions`] adds what
//! the middleware does to every route (API key, `Idempotency-Key` on POSTs,
//! `X-Request-ID`, opaque 500s), so no route can forget them.

use std::collections::BTreeSet;

use actix_web::{web, App};
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::AdditionalProperties;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
use utoipa::openapi::security::{SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Deprecated, HeaderBuilder, ObjectBuilder, Ref, RefOr, Required, Response, Schema, Type,
};
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt as _;

use crate::error::ErrorBody;
use crate::routes;
use crate::routes::docs::{
    ApiDocument, BadGateway, BadRequest, Conflict, Forbidden, GatewayTimeout, IdempotencyMismatch,
    Internal, NotFound, PayloadTooLarge, Unauthorized, Unavailable, UnsupportedMediaType,
};

/// The original service's paths, kept for its clients and marked deprecated.
const LEGACY_PREFIX: &str = "/api/formulas";

const BEARER: &str = "bearer";
const API_KEY: &str = "api_key";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Health Agent API",
        description = "An AI health coach behind a REST API: chat with an agent that remembers \
            you, log food, set reminders, collect XP and streaks.\n\n\
            Every error has the body `ErrorBody`. Every response carries `X-Request-ID` \
            (a valid incoming one is echoed). Every POST accepts an `Idempotency-Key`: a \
            retry with the same key (same API key and user) within 24 h returns the first \
            response again and changes nothing. Timestamps are RFC 3339 in UTC (`Z`)."
    ),
    components(
        schemas(ErrorBody),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            IdempotencyMismatch,
            Unavailable,
            BadGateway,
            GatewayTimeout,
            Internal,
        )
    ),
    tags(
        (name = "health", description = "Liveness and readiness probes; no API key."),
        (name = "chat", description = "Talk to the coach."),
        (name = "users", description = "Users, their profile, preferences and conversation."),
        (name = "food", description = "The food log and its nutrition."),
        (name = "meals", description = "Saved meals: save, find, log in one step, suggested \
            from what a user repeats."),
        (name = "formulas", description = "The original service's saved meals (`/api/formulas`), \
            answered by the same code; deprecated: use `meals`."),
        (name = "reminders", description = "Daily and one-time reminders, delivered once."),
        (name = "gamification", description = "XP, levels, streaks and achievements."),
        (name = "memories", description = "What the coach remembers about a user: list, add, forget, search by meaning."),
        (name = "operations", description = "Metrics and live configuration."),
        (name = "docs", description = "This document and Swagger UI; no API key."),
    )
)]
pub struct ApiDoc;

/// The document: what `ApiDoc` says of the API as a whole, the paths the
/// route table registers, and what the middleware adds to each. Built once
/// at start-up and shared with the routes that serve it.
pub fn api_document() -> anyhow::Result<ApiDocument> {
    let doc = document();
    let json = doc.to_json()?;
    let methods = doc
        .paths
        .paths
        .iter()
        .map(|(path, item)| {
            let methods: Vec<&str> = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PATCH", item.patch.is_some()),
                ("PUT", item.put.is_some()),
                ("DELETE", item.delete.is_some()),
            ]
            .into_iter()
            .filter_map(|(m, served)| served.then_some(m))
            .collect();
            (path.clone(), methods.join(", "))
        })
        .collect();
    Ok(ApiDocument::new(web::Bytes::from(json), methods))
}

fn document() -> utoipa::openapi::OpenApi {
    let paths_of = |routes: fn(&mut ServiceConfig)| {
        App::new()
            .into_utoipa_app()
            .configure(routes)
            .split_for_parts()
            .1
    };
    let public = paths_of(routes::public);
    let public_paths: BTreeSet<String> = public.paths.paths.keys().cloned().collect();
    let mut doc = ApiDoc::openapi();
    doc.merge(public);
    doc.merge(paths_of(routes::private));
    conventions(&mut doc, &public_paths);
    doc
}

fn response_ref(name: &str) -> RefOr<Response> {
    RefOr::Ref(Ref::from_response_name(name))
}

// ---------------------------------------------------------------------------

/// What the middleware does to every route: the API key on all but
/// `public_paths`, `Idempotency-Key` on POSTs, `X-Request-ID`, opaque 500s.
fn conventions(doc: &mut utoipa::openapi::OpenApi, public_paths: &BTreeSet<String>) {
    {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`Authorization: Bearer KEY`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "`X-API-Key: KEY`",
            ))),
        );
        // Field and preference names (no derive attribute for `propertyNames`).
        for name in ["Profile", "NewProfile", "Preferences"] {
            if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(name) {
                o.property_names = Some(Box::new(Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(r"^[a-z0-9_]{1,64}$"))
                        .build(),
                )));
            }
        }
        // The handler denies unknown fields; the derive does not say so for
        // an enum's variants.
        if let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut("NewReminder") {
            for variant in &mut one_of.items {
                if let RefOr::T(Schema::Object(o)) = variant {
                    o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
        for response in components.responses.values_mut() {
            if let RefOr::T(r) = response {
                add_request_id(r);
            }
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let public = public_paths.contains(path);
            let legacy = path.starts_with(LEGACY_PREFIX);
            let ops = [
                (&mut item.get, false),
                (&mut item.delete, false),
                (&mut item.patch, false),
                (&mut item.put, false),
                (&mut item.post, true),
            ];
            for (op, is_post) in ops {
                if let Some(op) = op.as_mut() {
                    apply(op, public, is_post);
                    if legacy {
                        op.deprecated = Some(Deprecated::True);
                    }
                }
            }
        }
    }
}

fn apply(op: &mut Operation, public: bool, is_post: bool) {
    let mut add = |status: &str, name: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| response_ref(name));
    };
    if !public {
        add("401", "Unauthorized");
        add("403", "Forbidden");
        add("500", "Internal");
    }
    if is_post {
        // The idempotency middleware: a bad key, a key in use or reused for
        // another request, the body read within the limit, the claim in
        // PostgreSQL.
        add("400", "BadRequest");
        add("409", "Conflict");
        add("413", "PayloadTooLarge");
        add("422", "IdempotencyMismatch");
        add("503", "Unavailable");
        op.parameters
            .get_or_insert_with(Vec::new)
            .push(idempotency_key());
    }
    for response in op.responses.responses.values_mut() {
        if let RefOr::T(r) = response {
            add_request_id(r);
        }
    }
    op.security = if public {
        Some(Vec::new())
    } else {
        Some(vec![
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::new(API_KEY, Vec::<String>::new()),
        ])
    };
}

fn add_request_id(r: &mut Response) {
    r.headers
        .entry("X-Request-ID".to_owned())
        .or_insert_with(|| {
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(
                    "The request's id: the client's when it is 1–128 characters of \
                 `A-Z a-z 0-9 . _ : -`, else a new one.",
                ))
                .build()
        });
}

fn idempotency_key() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "1–255 visible ASCII characters. A retry with the same key (same API key and \
             user) within 24 h returns the first response again (`Idempotent-Replayed: true`) \
             and changes nothing.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some(r"^[!-~]+$")),
        ))
        // No example: a fuzzer would send the one key with every POST.
        .build()
}
