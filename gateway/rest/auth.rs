//! `PUT /mode` behind the control token: an extractor that runs before the
//! body is read, so a refused call changes nothing and learns nothing about
//! the body's shape.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::Gateway;
use greet_runtime::auth::Denied;

/// The caller may use the controls: the gateway has no token, or the
/// request carries it.
pub(super) struct ControlAccess;

impl FromRequestParts<Arc<Gateway>> for ControlAccess {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, gateway: &Arc<Gateway>) -> Result<Self, Response> {
        let Some(token) = &gateway.control_token else {
            return Ok(ControlAccess);
        };
        let sent = parts.headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        token.check(sent).map(|()| ControlAccess).map_err(unauthorized)
    }
}

/// 401 with the JSON error and the challenge RFC 6750 asks for: no error
/// code when nothing usable was sent, `invalid_token` for a wrong one.
fn unauthorized(denied: Denied) -> Response {
    let challenge = match denied {
        Denied::Wrong => r#"Bearer error="invalid_token""#,
        Denied::Missing | Denied::NotBearer => "Bearer",
    };
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, denied.message()).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}
