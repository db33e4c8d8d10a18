//! The request extractor of the OAuth endpoints. It owns its rejections: whatever is wrong
//! with the request, the client gets an RFC 6749 §5.2 `invalid_request` JSON body, never a
//! framework's plain-text error.

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{Request, header};
use gatehouse_core::OAuthError;
use gatehouse_core::params::{FormParams, MAX_FORM_BYTES};

use crate::error::ApiError;

/// An `application/x-www-form-urlencoded` body and the `Authorization` header.
#[derive(Debug)]
pub struct OAuthForm {
    /// The decoded parameters.
    pub params: FormParams,
    /// The `Authorization` header, if any and if it is valid text.
    pub authorization: Option<String>,
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            )
            .into());
        }
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                OAuthError::invalid_request(format!(
                    "the body is larger than {MAX_FORM_BYTES} bytes"
                ))
            })?;
        Ok(OAuthForm {
            params: FormParams::parse(&body),
            authorization,
        })
    }
}
