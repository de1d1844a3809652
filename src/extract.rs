//! Extractors for what many handlers take: the user named in the path, the
//! item after it, and a JSON body whose errors name the field.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use domain::UserId;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// A user id from a path segment or a body field, or a 400 naming `user_id`.
pub fn user_id(raw: &str) -> ApiResult<UserId> {
    UserId::parse(raw).map_err(|why| ApiError::invalid_field("user_id", why))
}

/// The `{user_id}` path segment, checked.
pub struct PathUser(pub UserId);

impl FromRequest for PathUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw = req.match_info().get("user_id").unwrap_or_default();
        ready(user_id(raw).map(PathUser))
    }
}

/// The segment after `{user_id}` (a memory, meal, reminder or entry id),
/// as sent: each route decides what one it cannot parse means (a 404).
pub struct PathItem(pub String);

impl FromRequest for PathItem {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Segments are kept in match order, scopes first: the item is last.
        let item = req.match_info().iter().last().map(|(_, v)| v.to_owned());
        ready(
            item.map(PathItem)
                .ok_or_else(|| ApiError::bad_request("invalid path", "no item in the path")),
        )
    }
}

/// A JSON body as `T`. Read like `web::Json` (its size limit, content type
/// and syntax errors, see `error::extractors::json`), then decoded so a
/// wrong, missing or unknown field is named: `foods[1].grams: …`.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move { Ok(Body(decode(json.await?.into_inner())?)) })
    }
}

/// `value` as `T`, naming the field that does not fit (`body` for the whole).
pub fn decode<T: DeserializeOwned>(value: Value) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body" } else { path.as_str() };
        ApiError::invalid_field(field, e.inner())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Meal {
        #[allow(dead_code)]
        foods: Vec<Food>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Food {
        #[allow(dead_code)]
        grams: f64,
    }

    fn detail(e: ApiError) -> String {
        match e {
            ApiError::BadRequest { detail, .. } => detail.unwrap_or_default(),
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn a_body_that_does_not_fit_names_the_field() {
        let bad = decode::<Meal>(serde_json::json!({"foods": [{"grams": 1}, {"grams": "x"}]}));
        assert!(
            detail(bad.unwrap_err()).starts_with("foods[1].grams: invalid type"),
            "the element and its field"
        );
        let unknown = decode::<Meal>(serde_json::json!({"foods": [], "extra": 1}));
        assert_eq!(
            detail(unknown.unwrap_err()),
            "extra: unknown field `extra`, expected `foods`"
        );
        assert!(decode::<Meal>(serde_json::json!({"foods": []})).is_ok());
    }

    #[actix_web::test]
    async fn the_path_gives_the_user_and_the_item_after_it() {
        let req = TestRequest::default()
            .param("user_id", "ann")
            .param("meal_id", "m-1")
            .to_http_request();
        let PathUser(user) = PathUser::extract(&req).await.unwrap();
        assert_eq!(user.as_ref(), "ann");
        let PathItem(item) = PathItem::extract(&req).await.unwrap();
        assert_eq!(item, "m-1");

        let req = TestRequest::default()
            .param("user_id", "no spaces")
            .to_http_request();
        let err = PathUser::extract(&req).await.err().unwrap();
        assert!(detail(err).starts_with("user_id: "));
    }
}
