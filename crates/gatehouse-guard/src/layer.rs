//! The tower layer: admit a request (verified token with the scopes it needs) or answer with
//! the challenge.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::Guard;
use crate::challenge::{Refusal, respond};
use crate::verify::VerifyError;

/// Largest request body read to find the MCP tools it calls.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Layer protecting every route it wraps. Made by [`Guard::layer`].
#[derive(Clone)]
pub struct GuardLayer {
    guard: Guard,
}

impl GuardLayer {
    pub(crate) fn new(guard: Guard) -> Self {
        GuardLayer { guard }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            guard: self.guard.clone(),
            inner,
        }
    }
}

/// The service made by [`GuardLayer`].
#[derive(Clone)]
pub struct GuardService<S> {
    guard: Guard,
    inner: S,
}

impl<S> Service<Request<Body>> for GuardService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The clone that was made ready is the one that serves (tower's `poll_ready` contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            match admit(&guard, req).await {
                Ok(req) => inner.call(req).await,
                Err(refused) => Ok(refused),
            }
        })
    }
}

/// The request, with the verified principal in its extensions and without its
/// `Authorization` header; or the response that refuses it.
async fn admit(guard: &Guard, req: Request<Body>) -> Result<Request<Body>, Response> {
    // CORS preflights carry no credentials (Fetch standard); the app's CORS layer answers them.
    if req.method() == Method::OPTIONS {
        return Ok(req);
    }
    let config = guard.config();
    let prm = guard.resource_metadata_url();
    // MCP authorization: access tokens must not be sent in the query string.
    if req
        .uri()
        .query()
        .is_some_and(|q| form_keys(q).any(|k| k == "access_token"))
    {
        return Err(respond(
            Refusal::BadRequest(
                "send the access token in the Authorization header, not in the URL",
            ),
            prm,
            &config.scopes_supported,
        ));
    }
    let (req, needed) = needed_scopes(guard, req).await?;
    let challenge_scopes = if needed.is_empty() {
        &config.scopes_supported
    } else {
        &needed
    };
    let token = match bearer_token(&req) {
        Some(t) => t,
        None => return Err(respond(Refusal::NoToken, prm, challenge_scopes)),
    };
    let principal = match guard.verify(&token).await {
        Ok(p) => p,
        Err(VerifyError::Unavailable(why)) => {
            tracing::error!(error = %why, "cannot verify tokens");
            return Err(respond(Refusal::Unavailable, prm, challenge_scopes));
        }
        Err(e) => {
            tracing::debug!(error = %e, "token refused");
            return Err(respond(
                Refusal::InvalidToken(e.to_string()),
                prm,
                challenge_scopes,
            ));
        }
    };
    if !principal.missing_scopes(&needed).is_empty() {
        // MCP: one challenge naming every scope the operation needs, and the ones the token
        // already has (of this server's): a host that authorizes again with the challenge's
        // scopes alone, as the TypeScript SDK does, then keeps them (SEP-2350 has the client
        // make that union; this makes it for clients that do not).
        let kept = principal
            .scopes
            .iter()
            .filter(|s| config.scopes_supported.contains(s) && !needed.contains(s));
        let named: Vec<String> = kept.chain(&needed).cloned().collect();
        return Err(respond(Refusal::InsufficientScope(&needed), prm, &named));
    }
    let mut req = req;
    // MCP: the server must not pass the client's token on; nothing downstream needs it.
    req.headers_mut().remove(header::AUTHORIZATION);
    req.extensions_mut().insert((*principal).clone());
    Ok(req)
}

/// The scopes this request needs: the configured ones for every request, plus those of each
/// MCP tool the JSON-RPC body calls.
async fn needed_scopes(
    guard: &Guard,
    req: Request<Body>,
) -> Result<(Request<Body>, Vec<String>), Response> {
    let config = guard.config();
    let mut needed = config.required_scopes.clone();
    if config.tool_scopes.is_empty() || req.method() != Method::POST {
        return Ok((req, needed));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response())?;
    for tool in crate::mcp::called_tools(&bytes) {
        for s in config.tool_scopes.get(&tool).into_iter().flatten() {
            if !needed.contains(s) {
                needed.push(s.clone());
            }
        }
    }
    Ok((Request::from_parts(parts, Body::from(bytes)), needed))
}

/// The token of an `Authorization: Bearer …` header (RFC 6750 §2.1). Other schemes count as
/// no token.
fn bearer_token(req: &Request<Body>) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

fn form_keys(query: &str) -> impl Iterator<Item = String> + '_ {
    url::form_urlencoded::parse(query.as_bytes()).map(|(k, _)| k.into_owned())
}
