//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01): a client
//! whose `client_id` is an https URL publishes its metadata there; Gatehouse fetches it,
//! checks it, and caches it within bounds.
//!
//! The fetch itself (SSRF rules, size cap, timeouts, no redirects) is the adapter's
//! [`DocumentFetcher`]; this module decides which URLs may be fetched, what a valid document
//! is (CIMD-1, CIMD-4…CIMD-7), and how long it is kept (CIMD-11).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::sync::Cache;
use serde_json::Value;
use url::Url;

use crate::error::{ErrorCode, OAuthError};
use crate::model::Client;
use crate::redirect::{ApplicationType, RedirectUri};
use crate::types::ClientId;

/// CIMD-10: documents larger than this are refused.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Shortest time a valid document is kept, whatever its cache headers say.
pub const MIN_CACHE: Duration = Duration::from_secs(60);
/// Longest time a valid document is kept.
pub const MAX_CACHE: Duration = Duration::from_secs(24 * 3600);
/// How long a document without cache headers is kept.
pub const DEFAULT_CACHE: Duration = Duration::from_secs(600);
/// Documents kept at most.
const CACHE_ENTRIES: u64 = 10_000;

/// What a fetch returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedDocument {
    /// The body, at most [`MAX_DOCUMENT_BYTES`].
    pub body: Vec<u8>,
    /// How long the response may be cached, from `Cache-Control` (`max-age`, `no-store`,
    /// `no-cache`) or `Expires`; `None` when the response says nothing.
    pub freshness: Option<Duration>,
}

/// Why a fetch failed; the message is shown to the person on the error page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Fetches a metadata document: resolves the host, refuses special-use addresses, connects
/// only to the address it checked, follows no redirects, needs a 200, reads at most
/// [`MAX_DOCUMENT_BYTES`], and gives up quickly.
#[async_trait]
pub trait DocumentFetcher: Send + Sync {
    /// GETs `url`.
    async fn fetch(&self, url: &Url) -> Result<FetchedDocument, FetchError>;
}

/// CIMD-1: whether `id` may be a metadata-document URL — https, a host, a path other than
/// `/`, no `.` or `..` segments, no fragment, no credentials, no query. With
/// `dev_loopback`, `http` is also accepted for loopback hosts (development only).
pub fn document_url(id: &ClientId, dev_loopback: bool) -> Result<Url, OAuthError> {
    let s = id.as_str();
    let bad = |why: &str| {
        Err(OAuthError::new(
            ErrorCode::InvalidClient,
            format!("client_id `{s}` is not a valid client metadata document URL: {why}"),
        ))
    };
    let scheme_len = if s.starts_with("https://") {
        "https://".len()
    } else if dev_loopback
        && s.starts_with("http://")
        && Url::parse(s).is_ok_and(|u| crate::redirect::is_loopback(&u))
    {
        "http://".len()
    } else {
        return bad("it must use https");
    };
    if s.contains('#') {
        return bad("it must not have a fragment");
    }
    if s.contains('?') {
        return bad("it must not have a query");
    }
    // Check the segments before the URL parser resolves them away.
    let path = s[scheme_len..]
        .split_once('/')
        .map(|(_, p)| p)
        .unwrap_or("");
    if path.is_empty() {
        return bad("it must have a path");
    }
    if path
        .split('/')
        .any(|seg| matches!(seg, "." | ".." | "%2e" | "%2E" | "%2e%2e" | "%2E%2E"))
    {
        return bad("it must not have . or .. path segments");
    }
    let Ok(url) = Url::parse(s) else {
        return bad("it is not a URL");
    };
    if !url.username().is_empty() || url.password().is_some() {
        return bad("it must not contain credentials");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return bad("it has no host");
    }
    Ok(url)
}

/// Checks a fetched document against its URL and turns it into a client (CIMD-4…CIMD-6).
pub fn client_from_document(id: &ClientId, body: &[u8]) -> Result<Client, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|_| "the document is not valid JSON".to_owned())?;
    let Some(obj) = doc.as_object() else {
        return Err("the document is not a JSON object".into());
    };
    // CIMD-4: `client_id` equals the URL by simple string comparison.
    match obj.get("client_id").and_then(Value::as_str) {
        Some(c) if c == id.as_str() => {}
        Some(c) => return Err(format!("its client_id `{c}` differs from its URL")),
        None => return Err("it has no client_id".into()),
    }
    // CIMD-5: MCP clients must include client_name and redirect_uris.
    let name = match obj.get("client_name").and_then(Value::as_str) {
        Some(n) if !n.trim().is_empty() => n.trim().chars().take(100).collect::<String>(),
        _ => return Err("it has no client_name".into()),
    };
    let Some(uris) = obj.get("redirect_uris").and_then(Value::as_array) else {
        return Err("it has no redirect_uris array".into());
    };
    if uris.is_empty() {
        return Err("its redirect_uris array is empty".into());
    }
    let mut redirect_uris = Vec::with_capacity(uris.len());
    for u in uris {
        let u = u.as_str().ok_or("a redirect URI is not a string")?;
        redirect_uris.push(RedirectUri::parse(u).map_err(|e| e.0)?);
    }
    let declared = match obj.get("application_type") {
        None | Some(Value::Null) => None,
        Some(t) => Some(
            t.as_str()
                .and_then(ApplicationType::parse)
                .ok_or("its application_type is not one of web or native")?,
        ),
    };
    ApplicationType::of(declared, &redirect_uris)?;
    // CIMD-6: no shared secrets. Gatehouse does not implement private_key_jwt, so only
    // public clients (`none`, the default for a document) are accepted.
    if obj.contains_key("client_secret") || obj.contains_key("client_secret_expires_at") {
        return Err("it must not contain a client_secret".into());
    }
    match obj.get("token_endpoint_auth_method").map(Value::as_str) {
        None | Some(Some("none")) => {}
        Some(Some(m @ ("client_secret_basic" | "client_secret_post" | "client_secret_jwt"))) => {
            return Err(format!(
                "token_endpoint_auth_method `{m}` uses a shared secret, which metadata documents must not"
            ));
        }
        Some(Some(m)) => {
            return Err(format!(
                "token_endpoint_auth_method `{m}` is not supported here; use `none`"
            ));
        }
        Some(None) => return Err("token_endpoint_auth_method is not a string".into()),
    }
    Ok(Client::metadata_document(
        id.clone(),
        name,
        redirect_uris,
        doc.clone(),
    ))
}

/// How long to keep a valid document (CIMD-11): its own freshness, within
/// [`MIN_CACHE`]..=[`MAX_CACHE`]; zero (not cached) when it says `no-store`/`no-cache`.
pub fn cache_lifetime(freshness: Option<Duration>) -> Duration {
    match freshness {
        None => DEFAULT_CACHE,
        Some(d) if d.is_zero() => Duration::ZERO,
        Some(d) => d.clamp(MIN_CACHE, MAX_CACHE),
    }
}

#[derive(Clone)]
struct Cached {
    client: Arc<Client>,
    ttl: Duration,
}

struct PerEntry;

impl Expiry<ClientId, Cached> for PerEntry {
    fn expire_after_create(&self, _: &ClientId, v: &Cached, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// Resolves URL client ids to clients: from the cache, or by fetching and validating.
/// Failures are never cached (CIMD-11).
pub struct MetadataDocuments {
    fetcher: Arc<dyn DocumentFetcher>,
    dev_loopback: bool,
    cache: Cache<ClientId, Cached>,
}

impl MetadataDocuments {
    /// Resolves through `fetcher`. `dev_loopback` also accepts `http` URLs on loopback
    /// hosts; the fetcher decides separately whether loopback addresses may be reached.
    pub fn new(fetcher: Arc<dyn DocumentFetcher>, dev_loopback: bool) -> Self {
        MetadataDocuments {
            fetcher,
            dev_loopback,
            cache: Cache::builder()
                .max_capacity(CACHE_ENTRIES)
                .expire_after(PerEntry)
                .build(),
        }
    }

    /// The client described by the document at `id`. The error is `invalid_client` with a
    /// description fit for the error page (CIMD-12: the request is aborted, never redirected).
    pub async fn client(&self, id: &ClientId) -> Result<Arc<Client>, OAuthError> {
        if let Some(c) = self.cache.get(id) {
            return Ok(c.client);
        }
        let url = document_url(id, self.dev_loopback)?;
        let fail = |why: String| {
            OAuthError::new(
                ErrorCode::InvalidClient,
                format!("the client metadata document at {id} could not be used: {why}"),
            )
        };
        let fetched = self.fetcher.fetch(&url).await.map_err(|e| fail(e.0))?;
        let client = Arc::new(client_from_document(id, &fetched.body).map_err(fail)?);
        let ttl = cache_lifetime(fetched.freshness);
        if !ttl.is_zero() {
            self.cache.insert(
                id.clone(),
                Cached {
                    client: client.clone(),
                    ttl,
                },
            );
        }
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const URL: &str = "https://app.example/oauth/client.json";

    fn id(s: &str) -> ClientId {
        ClientId::parse(s).unwrap()
    }

    fn doc(extra: &str) -> Vec<u8> {
        format!(
            r#"{{"client_id":"{URL}","client_name":"App","redirect_uris":["http://127.0.0.1:3000/cb"]{extra}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn urls_follow_cimd_1() {
        assert!(document_url(&id(URL), false).is_ok());
        assert!(document_url(&id("https://app.example:8443/c"), false).is_ok());
        assert!(document_url(&id("http://127.0.0.1:8000/c"), false).is_err());
        assert!(document_url(&id("http://127.0.0.1:8000/c"), true).is_ok());
        assert!(document_url(&id("http://app.example/c"), true).is_err());
        for bad in [
            "http://app.example/c",
            "https://app.example",
            "https://app.example/",
            "https://app.example/a/../c",
            "https://app.example/./c",
            "https://app.example/%2e%2e/c",
            "https://app.example/c#f",
            "https://app.example/c?q=1",
            "https://u:p@app.example/c",
        ] {
            assert!(document_url(&id(bad), true).is_err(), "{bad}");
        }
    }

    #[test]
    fn documents_are_checked() {
        let c = client_from_document(&id(URL), &doc("")).unwrap();
        assert_eq!(c.name, "App");
        assert_eq!(c.redirect_uris.len(), 1);
        assert!(
            client_from_document(&id(URL), &doc(r#","token_endpoint_auth_method":"none""#)).is_ok()
        );
        let cases: [(&[u8], &str); 8] = [
            (b"not json", "not valid JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"client_id":"https://other.example/c","client_name":"A","redirect_uris":["https://a.example/cb"]}"#, "differs"),
            (br#"{"client_id":"https://app.example/oauth/client.json","redirect_uris":["https://a.example/cb"]}"#, "client_name"),
            (br#"{"client_id":"https://app.example/oauth/client.json","client_name":"A"}"#, "redirect_uris"),
            (br#"{"client_id":"https://app.example/oauth/client.json","client_name":"A","redirect_uris":["http://evil.example/cb"]}"#, "https"),
            (br#"{"client_id":"https://app.example/oauth/client.json","client_name":"A","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}"#, "shared secret"),
            (br#"{"client_id":"https://app.example/oauth/client.json","client_name":"A","redirect_uris":["https://a.example/cb"],"client_secret":"x"}"#, "client_secret"),
        ];
        for (body, why) in cases {
            let e = client_from_document(&id(URL), body).unwrap_err();
            assert!(e.contains(why), "{e} should mention {why}");
        }
        // A trailing slash is a different string (CIMD-4: simple string comparison).
        let e = client_from_document(&id(&format!("{URL}/")), &doc("")).unwrap_err();
        assert!(e.contains("differs"));
    }

    #[test]
    fn cache_lifetime_is_bounded() {
        assert_eq!(cache_lifetime(None), DEFAULT_CACHE);
        assert_eq!(cache_lifetime(Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(cache_lifetime(Some(Duration::from_secs(5))), MIN_CACHE);
        assert_eq!(
            cache_lifetime(Some(Duration::from_secs(999_999))),
            MAX_CACHE
        );
        assert_eq!(
            cache_lifetime(Some(Duration::from_secs(3600))),
            Duration::from_secs(3600)
        );
    }

    /// Answers from a queue and counts calls.
    struct Scripted(
        Mutex<Vec<Result<FetchedDocument, FetchError>>>,
        Mutex<usize>,
    );

    #[async_trait]
    impl DocumentFetcher for Scripted {
        async fn fetch(&self, _: &Url) -> Result<FetchedDocument, FetchError> {
            *self.1.lock().unwrap() += 1;
            self.0.lock().unwrap().remove(0)
        }
    }

    #[tokio::test]
    async fn valid_documents_are_cached_and_failures_are_not() {
        let ok = |freshness| {
            Ok(FetchedDocument {
                body: doc(""),
                freshness,
            })
        };
        let f = Arc::new(Scripted(
            Mutex::new(vec![
                Err(FetchError("HTTP 500".into())),
                Ok(FetchedDocument {
                    body: b"{}".to_vec(),
                    freshness: None,
                }),
                ok(Some(Duration::ZERO)),
                ok(None),
            ]),
            Mutex::new(0),
        ));
        let docs = MetadataDocuments::new(f.clone(), false);
        let e = docs.client(&id(URL)).await.unwrap_err();
        assert!(e.description.contains("HTTP 500"));
        assert!(
            docs.client(&id(URL)).await.is_err(),
            "a failure was not cached"
        );
        assert!(
            docs.client(&id(URL)).await.is_ok(),
            "no-store: fetched, not kept"
        );
        assert!(docs.client(&id(URL)).await.is_ok());
        assert!(docs.client(&id(URL)).await.is_ok(), "served from the cache");
        assert_eq!(*f.1.lock().unwrap(), 4);
    }
}
