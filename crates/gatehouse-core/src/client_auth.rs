//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1, OAuth 2.1 §2.4.1): `client_secret_basic`, `client_secret_post`,
//! `private_key_jwt` (RFC 7523 §2.2, [`crate::client_assertion`]), and `none` for public
//! clients, which present only their `client_id`.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::client_assertion::{self, JWT_BEARER};
use crate::engine::{Engine, IssuerContext};
use crate::error::{ErrorCode, OAuthError};
use crate::model::{Client, TokenAuthMethod};
use crate::params::FormParams;
use crate::secret::ClientSecret;
use crate::types::ClientId;

/// Authentication methods of the token and revocation endpoints, as advertised in metadata.
pub const AUTH_METHODS: [&str; 4] = [
    "none",
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];
/// Authentication methods of the introspection endpoint: only clients that prove who they
/// are may ask about tokens (RFC 7662 §2.1).
pub const CONFIDENTIAL_AUTH_METHODS: [&str; 3] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

/// The credentials a request presents.
#[derive(Debug)]
pub enum ClientCredentials {
    /// HTTP Basic with the form-encoded id and secret.
    Basic {
        /// Client id.
        id: ClientId,
        /// Client secret.
        secret: ClientSecret,
    },
    /// `client_id` and `client_secret` in the body.
    Post {
        /// Client id.
        id: ClientId,
        /// Client secret.
        secret: ClientSecret,
    },
    /// A signed JWT (`client_assertion`, RFC 7523 §2.2), not yet checked.
    Assertion {
        /// The `client_id` sent, or else the assertion's `sub`.
        id: ClientId,
        /// The JWT.
        assertion: String,
    },
    /// A `client_id` with no secret: a public client, or a confidential one that forgot it.
    IdOnly(ClientId),
}

impl ClientCredentials {
    /// Reads credentials from the `Authorization` header and the body.
    ///
    /// Only a `Basic` header counts: any other scheme is ignored, because the Scalekit SDKs
    /// send their own `Bearer` token along with body credentials. Using both Basic and a body
    /// secret is refused (RFC 6749 §2.3: one method per request).
    pub fn from_request(
        authorization: Option<&str>,
        params: &FormParams,
    ) -> Result<ClientCredentials, OAuthError> {
        let body_id = params.single("client_id")?;
        let body_secret = params.single("client_secret")?;
        let basic = authorization.and_then(|h| {
            let (scheme, rest) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
        let assertion_type = params.single("client_assertion_type")?;
        let assertion = params.single("client_assertion")?;
        if assertion.is_some() || assertion_type.is_some() {
            if basic.is_some() || body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method: a client assertion or a client secret, not both",
                ));
            }
            return Self::assertion(body_id, assertion_type, assertion);
        }
        if let Some(encoded) = basic {
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method: Basic or client_secret in the body, not both",
                ));
            }
            let (id, secret) = decode_basic(encoded).ok_or_else(|| {
                OAuthError::invalid_client().with_detail("malformed Basic credentials")
            })?;
            if body_id.is_some_and(|b| b != id.as_str()) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            return Ok(ClientCredentials::Basic { id, secret });
        }
        let Some(id) = body_id else {
            return Err(OAuthError::invalid_client().with_detail("no client credentials"));
        };
        let id = ClientId::parse(id).map_err(|_| OAuthError::invalid_client())?;
        Ok(match body_secret {
            Some(secret) => ClientCredentials::Post {
                id,
                secret: ClientSecret::new(secret),
            },
            None => ClientCredentials::IdOnly(id),
        })
    }

    /// RFC 7521 §4.2: `client_assertion_type` and `client_assertion` together; the client
    /// is the `client_id` sent, which must then be the assertion's subject, or the subject.
    fn assertion(
        body_id: Option<&str>,
        assertion_type: Option<&str>,
        assertion: Option<&str>,
    ) -> Result<ClientCredentials, OAuthError> {
        let (Some(kind), Some(assertion)) = (assertion_type, assertion) else {
            return Err(OAuthError::invalid_request(
                "send client_assertion_type and client_assertion together",
            ));
        };
        if kind != JWT_BEARER {
            return Err(OAuthError::invalid_client().with_detail(format!(
                "client_assertion_type `{kind}` is not supported; use {JWT_BEARER}"
            )));
        }
        let claimed = client_assertion::claimed_client(assertion);
        let id = match (body_id, claimed.as_deref()) {
            (Some(b), Some(c)) if b != c => {
                return Err(OAuthError::invalid_client()
                    .with_detail("client_id differs from the client assertion's subject"));
            }
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => {
                return Err(OAuthError::invalid_client()
                    .with_detail("the client assertion names no client"));
            }
        };
        let id = ClientId::parse(id).map_err(|_| OAuthError::invalid_client())?;
        Ok(ClientCredentials::Assertion {
            id,
            assertion: assertion.to_owned(),
        })
    }

    /// The client id presented.
    pub fn client_id(&self) -> &ClientId {
        match self {
            ClientCredentials::Basic { id, .. }
            | ClientCredentials::Post { id, .. }
            | ClientCredentials::Assertion { id, .. }
            | ClientCredentials::IdOnly(id) => id,
        }
    }

    /// Checks the credentials at `ctx` and returns the client: a client with a secret must
    /// present it, a client with keys must present a valid assertion, a public client must
    /// present neither. Every failure is the same `invalid_client`, so callers cannot probe
    /// which client ids exist; the detail is for the audit log.
    ///
    /// A URL client id is resolved through its metadata document (cached): `none`, or
    /// `private_key_jwt` when the document says so (CIMD-6: then every request must carry
    /// an assertion).
    pub async fn authenticate(
        &self,
        engine: &Engine,
        ctx: &IssuerContext,
    ) -> Result<Arc<Client>, OAuthError> {
        let id = self.client_id();
        let client = if id.is_url() {
            crate::cimd::resolve(engine, ctx, id).await.map_err(|e| {
                let why = e.detail.unwrap_or(e.description);
                OAuthError::invalid_client().with_detail(format!("{id}: {why}"))
            })?
        } else {
            engine.catalog().client(id).await?.ok_or_else(|| {
                OAuthError::invalid_client().with_detail(format!("unknown client {id}"))
            })?
        };
        let refused = |why: String| Err(OAuthError::invalid_client().with_detail(why));
        match (self, &client.secret_hash, client.auth_method) {
            (
                ClientCredentials::Assertion { assertion, .. },
                None,
                TokenAuthMethod::PrivateKeyJwt,
            ) => {
                client_assertion::verify(engine, ctx, &client, assertion).await?;
            }
            (ClientCredentials::Assertion { .. }, _, _) => {
                return refused(format!(
                    "client {id} has no keys registered for private_key_jwt"
                ));
            }
            (_, None, TokenAuthMethod::PrivateKeyJwt) => {
                return refused(format!(
                    "client {id} must authenticate with private_key_jwt"
                ));
            }
            (ClientCredentials::IdOnly(_), None, _) => {}
            (
                ClientCredentials::Basic { secret, .. } | ClientCredentials::Post { secret, .. },
                Some(hash),
                _,
            ) if hash.verify(secret) => {}
            (ClientCredentials::IdOnly(_), Some(_), _) => {
                return refused(format!("client {id} sent no secret"));
            }
            (_, None, _) => return refused(format!("public client {id} sent a secret")),
            (_, Some(_), _) => return refused(format!("wrong secret for {id}")),
        }
        // Only a client that proved who it is learns that it is disabled.
        if client.disabled_at.is_some() {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "this client is disabled by the operator of this server",
            )
            .with_detail(format!("client {id} is disabled")));
        }
        Ok(client)
    }
}

/// RFC 6749 §2.3.1: Basic credentials are the form-urlencoded id and secret.
fn decode_basic(encoded: &str) -> Option<(ClientId, ClientSecret)> {
    let raw = STANDARD.decode(encoded).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (id, secret) = raw.split_once(':')?;
    let id = form_decode(id)?;
    let secret = form_decode(secret)?;
    if secret.is_empty() {
        return None;
    }
    Some((ClientId::parse(&id).ok()?, ClientSecret::new(secret)))
}

fn form_decode(s: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(format!("v={s}").as_bytes())
        .into_owned()
        .collect();
    pairs.into_iter().next().map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_post_and_bearer_are_told_apart() {
        let none = FormParams::default();
        let c = ClientCredentials::from_request(Some(&basic("m2m_a", "s%3Ax")), &none).unwrap();
        match c {
            ClientCredentials::Basic { id, secret } => {
                assert_eq!(id.as_str(), "m2m_a");
                assert_eq!(
                    secret.expose_secret(),
                    "s:x",
                    "Basic parts are form-decoded"
                );
            }
            other => panic!("expected Basic, got {other:?}"),
        }
        let body = FormParams::parse(b"client_id=m2m_a&client_secret=s");
        let c = ClientCredentials::from_request(Some("Bearer abc.def.ghi"), &body).unwrap();
        assert!(
            matches!(c, ClientCredentials::Post { .. }),
            "a Bearer header is ignored"
        );
    }

    #[test]
    fn two_methods_or_mismatched_ids_are_refused() {
        let body = FormParams::parse(b"client_id=m2m_a&client_secret=s");
        let e = ClientCredentials::from_request(Some(&basic("m2m_a", "s")), &body).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let body = FormParams::parse(b"client_id=m2m_b");
        let e = ClientCredentials::from_request(Some(&basic("m2m_a", "s")), &body).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let body = FormParams::parse(b"client_id=m2m_a");
        assert!(ClientCredentials::from_request(Some(&basic("m2m_a", "s")), &body).is_ok());
    }

    #[test]
    fn missing_or_malformed_credentials_are_invalid_client() {
        let none = FormParams::default();
        let e = ClientCredentials::from_request(None, &none).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        let e = ClientCredentials::from_request(Some("Basic !!!"), &none).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        let e = ClientCredentials::from_request(Some(&basic("m2m_a", "")), &none).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
    }
}
