//! Upstream identity providers. OpenID Connect ones (Google, Microsoft Entra ID, Okta, any
//! other) go through `openidconnect`: discovery, authorization code with PKCE, and the ID
//! token checked (signature against the provider's JWKS, `iss`, `aud`, `exp`, `nonce`).
//! GitHub is plain OAuth 2 and its user API ([`crate::github`]).
//!
//! Nothing of a sign-in is kept here: the PKCE verifier and the nonce are derived from the
//! browser's 256-bit binding secret (see [`gatehouse_core::login`]), so they are recomputed
//! when the browser comes back and never stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::login::{LoginError, StartedLogin};
use gatehouse_core::signin::{Connection, ConnectionKind};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AccessToken, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// How long a provider's discovery document and keys are reused.
const METADATA_TTL: Duration = Duration::from_secs(300);
/// The largest answer read from a provider.
const MAX_BODY: usize = 1 << 20;
/// Claims about the token itself, not the person: not kept in the person's profile.
const PROTOCOL_CLAIMS: [&str; 13] = [
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "at_hash",
    "c_hash",
    "auth_time",
    "azp",
    "sid",
    "amr",
    "acr",
];

/// Talks to upstream providers, caching their discovery documents.
pub struct Upstream {
    http: reqwest::Client,
    metadata: Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>,
}

/// An HTTP failure towards a provider.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl Upstream {
    /// Providers are the operator's configuration, so any address they name is reached; no
    /// redirects are followed and every call has a deadline.
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .no_proxy()
            // GitHub's API refuses requests without one.
            .user_agent(concat!("Gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Upstream {
            http,
            metadata: Mutex::new(HashMap::new()),
        })
    }

    /// A client for `connection`'s provider, which sends the browser back to `callback`.
    async fn client_for(
        &self,
        connection: &Connection,
        callback: &str,
        fresh: bool,
    ) -> Result<Client, LoginError> {
        let (issuer, client_id, client_secret, _) = settings(connection)?;
        make_client(
            self.provider(issuer, fresh).await?,
            client_id,
            client_secret,
            callback,
        )
    }

    /// The HTTP client `openidconnect` calls: each request owns a handle to ours, so its
    /// future borrows nothing.
    fn client(
        &self,
    ) -> impl Fn(
        openidconnect::HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send>,
    > + use<> {
        let http = self.http.clone();
        move |req| Box::pin(call(http.clone(), req))
    }

    /// The provider's discovery document with its keys, fetched at most every
    /// [`METADATA_TTL`] (or again when `fresh`).
    async fn provider(
        &self,
        issuer: &str,
        fresh: bool,
    ) -> Result<CoreProviderMetadata, LoginError> {
        if !fresh
            && let Some((at, m)) = self.lock().get(issuer)
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let url = IssuerUrl::new(issuer.to_owned())
            .map_err(|e| LoginError::Upstream(format!("the issuer {issuer} is not a URL: {e}")))?;
        let http = self.client();
        let m = CoreProviderMetadata::discover_async(url, &http)
            .await
            .map_err(|e| {
                LoginError::Upstream(format!(
                    "the identity provider {issuer} could not be discovered: {}",
                    chain(&e)
                ))
            })?;
        self.lock()
            .insert(issuer.to_owned(), (Instant::now(), m.clone()));
        Ok(m)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, CoreProviderMetadata)>> {
        self.metadata.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where to send the browser for `started`, a login request through an identity
    /// provider; the provider sends it back to `callback`.
    pub async fn authorization_url(
        &self,
        started: &StartedLogin,
        callback: &str,
    ) -> Result<String, LoginError> {
        if let Some(github) = github(&started.connection) {
            return github.authorization_url(started, callback);
        }
        let (_, _, _, scopes) = settings(&started.connection)?;
        let client = self
            .client_for(&started.connection, callback, false)
            .await?;
        let verifier = pkce_verifier(&started.browser_secret);
        let state = started.state.clone();
        let n = nonce(&started.browser_secret);
        let mut req = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || n,
            )
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier));
        for s in scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, _, _) = req.url();
        Ok(url.to_string())
    }

    /// Exchanges `code` at the provider of `connection` and returns the person's claims.
    /// For OpenID Connect the ID token is checked, and the userinfo endpoint's claims are
    /// added when it lacks the email.
    pub async fn exchange(
        &self,
        connection: &Connection,
        browser_secret: &str,
        code: &str,
        callback: &str,
    ) -> Result<Map<String, Value>, LoginError> {
        if let Some(github) = github(connection) {
            return github
                .exchange(&self.http, browser_secret, code, callback)
                .await;
        }
        let http = self.client();
        let client = self.client_for(connection, callback, false).await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| {
                LoginError::Upstream(format!("the identity provider has no token endpoint: {e}"))
            })?
            .set_pkce_verifier(pkce_verifier(browser_secret))
            .request_async(&http)
            .await
            .map_err(|e| {
                LoginError::Upstream(format!(
                    "the identity provider refused the authorization code: {}",
                    chain(&e)
                ))
            })?;
        let id_token = token.id_token().ok_or_else(|| {
            LoginError::InvalidIdToken("the provider's token response has no id_token".into())
        })?;
        let expected = nonce(browser_secret);
        let verified = match id_token.claims(&client.id_token_verifier(), &expected) {
            Ok(c) => c.clone(),
            // The provider may have rotated its keys since they were fetched: once more with
            // fresh ones.
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                let fresh = self.client_for(connection, callback, true).await?;
                id_token
                    .claims(&fresh.id_token_verifier(), &expected)
                    .map_err(refused)?
                    .clone()
            }
            Err(e) => return Err(refused(e)),
        };
        let mut claims = match serde_json::to_value(&verified) {
            Ok(Value::Object(m)) => m,
            _ => return Err(LoginError::InvalidIdToken("unreadable claims".into())),
        };
        for c in PROTOCOL_CLAIMS {
            claims.remove(c);
        }
        if !claims.contains_key("email")
            && let Ok(request) = client.user_info(
                AccessToken::new(token.access_token().secret().clone()),
                Some(verified.subject().clone()),
            )
        {
            let info: openidconnect::core::CoreUserInfoClaims =
                request.request_async(&http).await.map_err(|e| {
                    LoginError::Upstream(format!(
                        "the identity provider's userinfo endpoint failed: {}",
                        chain(&e)
                    ))
                })?;
            if let Ok(Value::Object(more)) = serde_json::to_value(&info) {
                for (k, v) in more {
                    claims.entry(k).or_insert(v);
                }
            }
        }
        Ok(claims)
    }
}

/// Performs one request for `openidconnect`, reading at most [`MAX_BODY`] of the answer.
async fn call(
    http: reqwest::Client,
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let (parts, body) = req.into_parts();
    let mut resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(format!("{}: {e}", parts.uri)))?;
    let mut out = http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let uri = parts.uri.to_string();
    let bytes = read_limited(&mut resp, &uri).await?;
    out.body(bytes).map_err(|e| HttpError(e.to_string()))
}

/// The body of `resp`, at most [`MAX_BODY`].
async fn read_limited(resp: &mut reqwest::Response, url: &str) -> Result<Vec<u8>, HttpError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| HttpError(format!("{url}: {e}")))?
    {
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(HttpError(format!("{url}: answer over 1 MiB")));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The body of a provider's answer to a call to `url`, at most [`MAX_BODY`].
pub(crate) async fn read_body(
    mut resp: reqwest::Response,
    url: &str,
) -> Result<Vec<u8>, LoginError> {
    read_limited(&mut resp, url)
        .await
        .map_err(|e| LoginError::Upstream(format!("the identity provider's answer failed: {e}")))
}

/// The GitHub app of `c`, if it is a GitHub connection.
fn github(c: &Connection) -> Option<crate::github::Github<'_>> {
    match &c.kind {
        ConnectionKind::Github {
            base_url,
            client_id,
            client_secret,
        } => Some(crate::github::Github {
            base_url,
            client_id,
            client_secret,
        }),
        _ => None,
    }
}

/// The OpenID Connect settings of `c`.
fn settings(c: &Connection) -> Result<(&str, &str, &str, &[String]), LoginError> {
    match &c.kind {
        ConnectionKind::Oidc {
            issuer,
            client_id,
            client_secret,
            scopes,
        } => Ok((issuer, client_id, client_secret, scopes)),
        ConnectionKind::Federated { .. } | ConnectionKind::Github { .. } => {
            Err(LoginError::WrongKind(format!(
                "connection {} is not an OpenID Connect connection",
                c.id
            )))
        }
    }
}

type Client = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

fn make_client(
    metadata: CoreProviderMetadata,
    client_id: &str,
    client_secret: &str,
    callback: &str,
) -> Result<Client, LoginError> {
    let secret = (!client_secret.is_empty()).then(|| ClientSecret::new(client_secret.to_owned()));
    let redirect = RedirectUrl::new(callback.to_owned())
        .map_err(|e| LoginError::Upstream(format!("the callback URL is not a URL: {e}")))?;
    Ok(
        CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.to_owned()), secret)
            .set_redirect_uri(redirect),
    )
}

fn refused(e: ClaimsVerificationError) -> LoginError {
    let what = match &e {
        ClaimsVerificationError::Expired(_) => "it has expired",
        ClaimsVerificationError::InvalidAudience(_) => "it is not for this client (audience)",
        ClaimsVerificationError::InvalidIssuer(_) => "it is from another issuer",
        ClaimsVerificationError::InvalidNonce(_) => {
            "its nonce is not the one sent (it belongs to another sign-in)"
        }
        ClaimsVerificationError::SignatureVerification(_) => {
            "its signature does not verify with the provider's keys"
        }
        _ => "it failed a check",
    };
    LoginError::InvalidIdToken(format!("{what}: {}", chain(&e)))
}

/// An error with its causes, for messages.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A value derived from the browser's binding secret for one purpose.
fn derived(purpose: &str, browser_secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"gatehouse oidc\0");
    h.update(purpose.as_bytes());
    h.update(b"\0");
    h.update(browser_secret.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// The PKCE verifier of a sign-in: 43 characters, from the browser's secret.
pub(crate) fn pkce_verifier(browser_secret: &str) -> PkceCodeVerifier {
    PkceCodeVerifier::new(derived("pkce", browser_secret))
}

/// The nonce of a sign-in, from the browser's secret.
fn nonce(browser_secret: &str) -> Nonce {
    Nonce::new(derived("nonce", browser_secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_and_nonce_come_from_the_browser_secret_and_differ() {
        let a = pkce_verifier("secret-a");
        assert_eq!(a.secret().len(), 43);
        assert_eq!(a.secret(), pkce_verifier("secret-a").secret());
        assert_ne!(a.secret(), pkce_verifier("secret-b").secret());
        assert_ne!(a.secret(), nonce("secret-a").secret());
    }
}
