//! `private_key_jwt` (RFC 7523 §2.2 and §3, RFC 7521 §4.2): a client proves who it is with
//! a short-lived JWT signed by its private key. One verifier for every kind of client —
//! metadata documents (ChatGPT), registered clients and agents — with the keys from
//! [`crate::client_keys`].
//!
//! Every refusal is audited (`client_assertion.refused`) with its reason in words; the
//! assertion itself is never logged.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::audit::EventType;
use crate::client_keys::{ALGORITHM_NAMES, ALGORITHMS};
use crate::clock::UnixTime;
use crate::engine::{Engine, IssuerContext};
use crate::error::OAuthError;
use crate::metadata::paths;
use crate::model::Client;

/// RFC 7523 §2.2: the only `client_assertion_type` there is.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// An assertion may expire at most this many seconds ahead.
pub const MAX_LIFETIME: i64 = 300;
/// Clock difference tolerated between the client and this server, in seconds.
pub const SKEW: i64 = 30;
/// Longest `jti` accepted.
const MAX_JTI: usize = 256;
/// Longest assertion read at all.
pub const MAX_ASSERTION: usize = 8 * 1024;

#[derive(Deserialize)]
struct Claims {
    // Read as strings so that an array (which the validation would accept when it holds the
    // client id) fails: RFC 7523 §3 makes each one value.
    #[serde(rename = "iss")]
    _iss: String,
    #[serde(rename = "sub")]
    _sub: String,
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

/// The `sub` (or else `iss`) an assertion claims, read without checking anything: it names
/// the client whose keys then check it.
pub fn claimed_client(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims
        .get("sub")
        .or_else(|| claims.get("iss"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Checks `assertion` as `client`'s authentication at `ctx`'s token endpoint, uses up its
/// `jti`, and audits a refusal.
pub async fn verify(
    engine: &Engine,
    ctx: &IssuerContext,
    client: &Client,
    assertion: &str,
) -> Result<(), OAuthError> {
    match check(engine, ctx, client, assertion).await {
        Ok(()) => Ok(()),
        Err(Refusal::Store(e)) => Err(e),
        Err(Refusal::Invalid(reason)) => {
            engine.audit(
                ctx.event(EventType::ClientAssertionRefused, engine.now())
                    .client(&client.id)
                    .detail("reason", reason.as_str()),
            );
            Err(OAuthError::invalid_client()
                .with_detail(format!("client assertion of {}: {reason}", client.id)))
        }
    }
}

enum Refusal {
    Invalid(String),
    Store(OAuthError),
}

impl From<String> for Refusal {
    fn from(reason: String) -> Self {
        Refusal::Invalid(reason)
    }
}

async fn check(
    engine: &Engine,
    ctx: &IssuerContext,
    client: &Client,
    assertion: &str,
) -> Result<(), Refusal> {
    if assertion.len() > MAX_ASSERTION {
        return Err(format!("it is longer than {MAX_ASSERTION} bytes").into());
    }
    let alg = algorithm(assertion)?;
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| format!("its header is not valid: {e}"))?;
    let kid = header.kid.as_deref();
    let now = engine.now();
    let found = engine.client_keys(client, kid, alg, now).await;
    let Some(keys) = found.keys else {
        let why = found.failure.unwrap_or_else(|| "it has no keys".into());
        return Err(format!("the client's keys could not be had: {why}").into());
    };
    if let Some(failure) = &found.failure {
        tracing::warn!(client = %client.id, %failure, "using the last good key set of a client");
    }

    let token_endpoint = ctx.issuer.join(paths::TOKEN);
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims = ["exp", "iss", "sub", "aud"].map(String::from).into();
    validation.set_audience(&[ctx.issuer.as_str(), token_endpoint.as_str()]);
    validation.set_issuer(&[client.id.as_str()]);
    validation.sub = Some(client.id.as_str().to_owned());

    let mut claims = None;
    let mut tried = 0;
    for key in keys.candidates(kid, alg) {
        tried += 1;
        match jsonwebtoken::decode::<Claims>(assertion, key, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {}
            Err(e) => return Err(describe(&e, &token_endpoint).into()),
        }
    }
    let Some(claims) = claims else {
        return Err(match (tried, kid) {
            (0, Some(kid)) => format!("the client's key set has no {alg:?} key `{kid}`"),
            (0, None) => format!("the client's key set has no {alg:?} key"),
            _ => "its signature does not verify with the client's keys".to_owned(),
        }
        .into());
    };
    times(&claims, now)?;
    let jti = match claims.jti.as_deref() {
        Some(j) if !j.is_empty() && j.len() <= MAX_JTI && !j.chars().any(char::is_control) => j,
        Some(_) => {
            return Err(format!(
                "its jti is empty, longer than {MAX_JTI} or holds control characters"
            )
            .into());
        }
        None => return Err("it has no jti".to_owned().into()),
    };
    // Remembered as long as `times` would still accept it: `exp` plus the clock skew.
    let first = engine
        .store()
        .use_client_assertion(
            &client.id,
            jti,
            UnixTime(claims.exp.saturating_add(SKEW)),
            now,
        )
        .await
        .map_err(|e| Refusal::Store(e.into()))?;
    if !first {
        return Err(format!("it was used before (jti `{jti}`)").into());
    }
    Ok(())
}

/// The header's `alg`, if it is one accepted here: never `none`, never HMAC.
fn algorithm(assertion: &str) -> Result<Algorithm, String> {
    let header = assertion
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .ok_or("it is not a JWT")?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    ALGORITHM_NAMES
        .iter()
        .position(|a| *a == alg)
        .map(|i| ALGORITHMS[i])
        .ok_or_else(|| {
            format!(
                "alg `{alg}` is not accepted; use one of {}",
                ALGORITHM_NAMES.join(", ")
            )
        })
}

fn describe(e: &jsonwebtoken::errors::Error, token_endpoint: &str) -> String {
    match e.kind() {
        ErrorKind::InvalidAudience => {
            format!("its aud is neither this issuer nor the token endpoint {token_endpoint}")
        }
        ErrorKind::InvalidIssuer => "its iss is not the client id".into(),
        ErrorKind::InvalidSubject => "its sub is not the client id".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("it has no {c}"),
        _ => format!("it is not a valid JWT: {e}"),
    }
}

/// RFC 7523 §3: `exp` in the future (but not far), `nbf` and `iat` not in the future.
fn times(c: &Claims, now: UnixTime) -> Result<(), String> {
    if c.exp <= now.0 - SKEW {
        return Err("it has expired".into());
    }
    if c.exp > now.0 + MAX_LIFETIME + SKEW {
        return Err(format!("its exp is more than {MAX_LIFETIME} seconds ahead"));
    }
    if c.nbf.is_some_and(|nbf| nbf > now.0 + SKEW) {
        return Err("its nbf is in the future".into());
    }
    if c.iat.is_some_and(|iat| iat > now.0 + SKEW) {
        return Err("its iat is in the future".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn only_asymmetric_algorithms_are_accepted() {
        for alg in ALGORITHM_NAMES {
            assert!(algorithm(&jwt(&format!(r#"{{"alg":"{alg}"}}"#), "{}")).is_ok());
        }
        for alg in ["none", "HS256", "HS512", "RS384", "ES512", ""] {
            let e = algorithm(&jwt(&format!(r#"{{"alg":"{alg}"}}"#), "{}")).unwrap_err();
            assert!(e.contains("not accepted"), "{alg}: {e}");
        }
        assert!(algorithm("nonsense").is_err());
    }

    #[test]
    fn the_claimed_client_is_sub_then_iss() {
        let a = jwt("{}", r#"{"iss":"i","sub":"https://app.example/c.json"}"#);
        assert_eq!(
            claimed_client(&a).as_deref(),
            Some("https://app.example/c.json")
        );
        assert_eq!(
            claimed_client(&jwt("{}", r#"{"iss":"i"}"#)).as_deref(),
            Some("i")
        );
        assert_eq!(claimed_client("x"), None);
    }

    #[test]
    fn times_are_bounded() {
        let now = UnixTime(10_000);
        let c = |exp, nbf, iat| Claims {
            _iss: String::new(),
            _sub: String::new(),
            exp,
            nbf,
            iat,
            jti: None,
        };
        assert!(times(&c(10_060, Some(10_000), Some(10_000)), now).is_ok());
        assert!(times(&c(10_330, None, None), now).is_ok(), "5 min + skew");
        assert!(times(&c(9_971, None, None), now).is_ok(), "within the skew");
        for (claims, why) in [
            (c(9_970, None, None), "expired"),
            (c(10_331, None, None), "ahead"),
            (c(86_400_000, None, None), "ahead"),
            (c(10_060, Some(10_031), None), "nbf"),
            (c(10_060, None, Some(10_031)), "iat"),
        ] {
            let e = times(&claims, now).unwrap_err();
            assert!(e.contains(why), "{e} should say {why}");
        }
    }
}
