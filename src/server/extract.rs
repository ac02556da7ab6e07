//! Extractors whose rejections are problem details: [`ApiQuery`] is axum's `Query` answering a
//! query string that does not parse with a 400 [`INVALID_QUERY`] problem (axum's own answers
//! in plain text).

use axum::extract::{FromRequestParts, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::server::problem::{INVALID_QUERY, Problem, excerpt};

/// The query string deserialised into `T`, or a 400 [`INVALID_QUERY`] problem naming the
/// parameter that failed (at most 300 characters of the parser's message).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(e) => Err(INVALID_QUERY.at(StatusCode::BAD_REQUEST, excerpt(&e.body_text(), 300))),
        }
    }
}
