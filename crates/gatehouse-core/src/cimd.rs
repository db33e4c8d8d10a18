//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01): a client
//! whose `client_id` is an https URL publishes its metadata there; Gatehouse fetches it,
//! checks it, and caches it within bounds.
//!
//! The fetch itself (SSRF rules, size cap, timeouts, no redirects) is the adapter's
//! [`DocumentFetcher`]; the cache is [`RemoteCache`]; this module decides which URLs may be
//! fetched, what a valid document is (CIMD-1, CIMD-4…CIMD-7), and how long it is kept
//! (CIMD-11).

use std::sync::Arc;

use serde_json::Value;
use url::Url;

use crate::audit::EventType;
use crate::client_keys;
use crate::clock::UnixTime;
use crate::engine::{Engine, IssuerContext};
use crate::error::{ErrorCode, OAuthError};
use crate::model::{Client, TokenAuthMethod};
use crate::redirect::{ApplicationType, RedirectUri};
use crate::remote::{DocumentFetcher, FetchError, Outcome, Policy, RemoteCache};
use crate::types::ClientId;

/// CIMD-10: documents larger than this are refused.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// How long documents are kept, in seconds (CIMD-11): their own `max-age` within 5 minutes
/// and a day, 10 minutes when they say nothing; the last good copy answers for up to a week
/// while its server does not answer or fails.
pub const POLICY: Policy = Policy {
    min_fresh: 300,
    max_fresh: 86_400,
    default_fresh: 600,
    keep_stale: 7 * 86_400,
    remember_failure: 10,
};
/// Bytes the cache of documents holds at most (see [`RemoteCache::new`]): some thousands of
/// documents.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// What a client made from a document holds, at most, per byte of the document: its
/// redirect URIs parsed (a short URI grows about tenfold) and its key set, if it has one
/// (measured on padded documents: under 16).
const DOCUMENT_GROWTH: usize = 16;

/// CIMD-1: whether `id` may be a metadata-document URL — https, a host, a path other than
/// `/`, no `.` or `..` segments, no fragment, no credentials, and nothing a URL parser would
/// rewrite (so the URL fetched is the id, byte for byte). A query is accepted (the draft
/// says SHOULD NOT, and Codex uses one): the id stays the exact string. With `dev_loopback`,
/// `http` is also accepted for loopback hosts (development only).
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
    // Check the segments before the URL parser resolves them away.
    let before_query = s[scheme_len..].split('?').next().unwrap_or("");
    let path = before_query.split_once('/').map(|(_, p)| p).unwrap_or("");
    if path.is_empty() {
        return bad("it must have a path");
    }
    // `.` may be spelt `%2e` or `%2E`, and in `..` each dot either way.
    let dots = |seg: &str| seg.to_ascii_lowercase().replace("%2e", ".");
    if path
        .split('/')
        .any(|seg| matches!(dots(seg).as_str(), "." | ".."))
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
    // What is fetched must be the id itself: the parser turns `\` into `/`, trims spaces,
    // lower-cases the host and drops a default port, so any id it would rewrite (a `..\`
    // segment, a trailing space, `HTTPS://`) is refused rather than fetched elsewhere.
    if url.as_str() != s {
        return bad(&format!("it is not in its normal form (`{url}`)"));
    }
    Ok(url)
}

/// Checks a fetched document against its URL and turns it into a client (CIMD-4…CIMD-6).
/// Members Gatehouse does not know are ignored.
pub fn client_from_document(
    id: &ClientId,
    body: &[u8],
    dev_loopback: bool,
) -> Result<Client, String> {
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
    // CIMD-6: no shared secrets; `none`, or `private_key_jwt` with the client's keys.
    if obj.contains_key("client_secret") || obj.contains_key("client_secret_expires_at") {
        return Err("it must not contain a client_secret".into());
    }
    let has_keys = client_keys::check_metadata(&doc, dev_loopback)?;
    let auth_method = auth_method(obj, has_keys)?;
    // Of the rest, only the key set is read again; the members a host adds are not kept.
    let kept: serde_json::Map<String, Value> = ["jwks", "jwks_uri"]
        .into_iter()
        .filter_map(|m| Some((m.to_owned(), obj.get(m)?.clone())))
        .collect();
    let mut client =
        Client::metadata_document(id.clone(), name, redirect_uris, Value::Object(kept));
    client.auth_method = auth_method;
    Ok(client)
}

/// The token endpoint authentication a document asks for: `token_endpoint_auth_method`, or
/// the strongest supported method it lists in `token_endpoint_auth_methods_supported`
/// (ChatGPT's shared document lists `none` and `private_key_jwt`), or `none`.
fn auth_method(
    doc: &serde_json::Map<String, Value>,
    has_keys: bool,
) -> Result<TokenAuthMethod, String> {
    let check = |m: &str| -> Result<TokenAuthMethod, String> {
        match m {
            "none" => Ok(TokenAuthMethod::None),
            "private_key_jwt" if has_keys => Ok(TokenAuthMethod::PrivateKeyJwt),
            "private_key_jwt" => {
                Err("token_endpoint_auth_method `private_key_jwt` needs jwks or jwks_uri".into())
            }
            "client_secret_basic" | "client_secret_post" | "client_secret_jwt" => Err(format!(
                "token_endpoint_auth_method `{m}` uses a shared secret, which metadata documents must not"
            )),
            _ => Err(format!(
                "token_endpoint_auth_method `{m}` is not supported here; use `none` or `private_key_jwt`"
            )),
        }
    };
    match doc.get("token_endpoint_auth_method") {
        Some(Value::String(m)) => return check(m),
        Some(Value::Null) | None => {}
        Some(_) => return Err("token_endpoint_auth_method is not a string".into()),
    }
    let Some(listed) = doc
        .get("token_endpoint_auth_methods_supported")
        .and_then(Value::as_array)
    else {
        return Ok(TokenAuthMethod::None);
    };
    let listed: Vec<&str> = listed.iter().filter_map(Value::as_str).collect();
    if has_keys && listed.contains(&"private_key_jwt") {
        Ok(TokenAuthMethod::PrivateKeyJwt)
    } else if listed.contains(&"none") {
        Ok(TokenAuthMethod::None)
    } else {
        Err(format!(
            "token_endpoint_auth_methods_supported lists none of the methods supported here \
             (none, private_key_jwt with jwks or jwks_uri): {}",
            listed.join(", ")
        ))
    }
}

/// Resolves URL client ids to clients: from the cache, or by fetching and validating.
pub struct MetadataDocuments {
    fetcher: Arc<dyn DocumentFetcher>,
    dev_loopback: bool,
    cache: RemoteCache<ClientId, Client>,
}

impl MetadataDocuments {
    /// Resolves through `fetcher`. `dev_loopback` also accepts `http` URLs on loopback
    /// hosts; the fetcher decides separately whether loopback addresses may be reached.
    pub fn new(fetcher: Arc<dyn DocumentFetcher>, dev_loopback: bool) -> Self {
        MetadataDocuments {
            fetcher,
            dev_loopback,
            cache: RemoteCache::new(CACHE_BYTES, POLICY),
        }
    }

    /// The client described by the document at `id`, at `now`: fresh, the last good copy
    /// (with why a refetch failed), or why there is none. The error is `invalid_client` for
    /// an id that is not a document URL at all.
    pub async fn client(
        &self,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<Outcome<Client>, OAuthError> {
        let url = document_url(id, self.dev_loopback)?;
        let fetch = || async {
            let fetched = self.fetcher.fetch(&url, MAX_DOCUMENT_BYTES).await?;
            let client = client_from_document(id, &fetched.body, self.dev_loopback)
                .map_err(FetchError::refused)?;
            Ok((client, fetched.received(DOCUMENT_GROWTH)))
        };
        Ok(self.cache.get(id, now, None, fetch).await)
    }
}

/// The client whose metadata document is at `id`, for a request at `ctx`: refused when this
/// server or its MCP server takes no documents. A failed fetch or a bad document is audited
/// (`metadata_document.failed`, with the reason) once per fetch, and the person is told only
/// that the document could not be used (CIMD-12); a refetch that failed while the last good
/// copy still answers is audited as `metadata_document.stale`.
pub async fn resolve(
    engine: &Engine,
    ctx: &IssuerContext,
    id: &ClientId,
) -> Result<Arc<Client>, OAuthError> {
    let refuse = |why: String| OAuthError::new(ErrorCode::InvalidClient, why);
    if let Some(r) = &ctx.resource
        && !r.metadata_documents
    {
        return Err(refuse(format!(
            "{} does not accept client metadata documents",
            r.name
        )));
    }
    let Some(docs) = engine.documents() else {
        return Err(refuse(
            "this server does not accept client metadata documents".into(),
        ));
    };
    let report = |kind, reason: &str| {
        engine.audit(
            ctx.event(kind, engine.now())
                .client(id)
                .detail("reason", reason),
        );
    };
    match docs.client(id, engine.now()).await? {
        Outcome::Fresh(client) => Ok(client),
        Outcome::Stale {
            value,
            reason,
            fetched,
        } => {
            if fetched {
                tracing::warn!(client = %id, %reason, "using the last good copy of a client metadata document");
                report(EventType::MetadataDocumentStale, &reason);
            }
            Ok(value)
        }
        Outcome::Failed { reason, fetched } => {
            if fetched {
                report(EventType::MetadataDocumentFailed, &reason);
            }
            Err(refuse(format!(
                "the client metadata document at {id} could not be used; the operator of this server can see why in its audit log"
            ))
            .with_detail(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::FetchedDocument;
    use async_trait::async_trait;
    use std::sync::Mutex;
    use std::time::Duration;

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

    fn check(body: &[u8]) -> Result<Client, String> {
        client_from_document(&id(URL), body, false)
    }

    #[test]
    fn urls_follow_cimd_1() {
        assert!(document_url(&id(URL), false).is_ok());
        assert!(document_url(&id("https://app.example:8443/c"), false).is_ok());
        assert!(document_url(&id("http://127.0.0.1:8000/c"), false).is_err());
        assert!(document_url(&id("http://127.0.0.1:8000/c"), true).is_ok());
        assert!(document_url(&id("http://app.example/c"), true).is_err());
        // Codex's document URLs carry a query; the id is the exact string.
        let codex = "https://app.example/oauth/client.json?client=codex&v=1";
        assert_eq!(document_url(&id(codex), false).unwrap().as_str(), codex);
        for bad in [
            "http://app.example/c",
            "https://app.example",
            "https://app.example/",
            "https://app.example?q=1",
            "https://app.example/?q=1",
            "https://app.example/a/../c",
            "https://app.example/./c",
            "https://app.example/%2e%2e/c",
            "https://app.example/a/.%2e/c",
            "https://app.example/a/%2e./c",
            "https://app.example/a/%2E%2e/c",
            "https://app.example/%2E/c",
            "https://app.example/legit\\..\\evil.json",
            "https://app.example/legit/.%2e\\evil.json",
            "https://app.example/evil/.. ",
            "https://App.example/c",
            "https://app.example:443/c",
            "https://app.example/c d",
            "https://app.example/c#f",
            "https://u:p@app.example/c",
        ] {
            assert!(document_url(&id(bad), true).is_err(), "{bad}");
        }
    }

    #[test]
    fn documents_are_checked() {
        let c = check(&doc("")).unwrap();
        assert_eq!(c.name, "App");
        assert_eq!(c.redirect_uris.len(), 1);
        assert_eq!(c.auth_method, TokenAuthMethod::None);
        assert!(check(&doc(r#","token_endpoint_auth_method":"none""#)).is_ok());
        let padded = check(&doc(
            r#","logo_uri":"https://app.example/l.png","x_vendor":{"a":[0,0,0,0,0,0,0,0]}"#,
        ))
        .expect("unknown members are ignored");
        // …and not kept: the cache would hold them, many times their size once parsed.
        assert_eq!(padded.metadata, serde_json::json!({}));
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
            let e = check(body).unwrap_err();
            assert!(e.contains(why), "{e} should mention {why}");
        }
        // A trailing slash is a different string (CIMD-4: simple string comparison).
        let e = client_from_document(&id(&format!("{URL}/")), &doc(""), false).unwrap_err();
        assert!(e.contains("differs"));
    }

    #[test]
    fn private_key_jwt_is_chosen_when_the_document_says_so_or_lists_it() {
        let keys = r#","jwks_uri":"https://app.example/jwks.json""#;
        let pick = |extra: &str| check(&doc(&format!("{keys}{extra}"))).map(|c| c.auth_method);
        assert_eq!(
            pick(r#","token_endpoint_auth_method":"private_key_jwt""#),
            Ok(TokenAuthMethod::PrivateKeyJwt)
        );
        // ChatGPT's shared document lists both: the stronger one is used.
        assert_eq!(
            pick(r#","token_endpoint_auth_methods_supported":["none","private_key_jwt"]"#),
            Ok(TokenAuthMethod::PrivateKeyJwt)
        );
        assert_eq!(
            pick(r#","token_endpoint_auth_methods_supported":["private_key_jwt"]"#),
            Ok(TokenAuthMethod::PrivateKeyJwt)
        );
        assert_eq!(
            pick(r#","token_endpoint_auth_method":"none""#),
            Ok(TokenAuthMethod::None)
        );
        assert_eq!(check(&doc("")).unwrap().auth_method, TokenAuthMethod::None);
        for (body, why) in [
            (
                doc(r#","token_endpoint_auth_method":"private_key_jwt""#),
                "needs jwks",
            ),
            (
                doc(r#","token_endpoint_auth_methods_supported":["client_secret_basic"]"#),
                "lists none",
            ),
            (
                doc(r#","token_endpoint_auth_method":"client_secret_jwt""#),
                "shared secret",
            ),
            (
                doc(r#","token_endpoint_auth_method":"tls_client_auth""#),
                "not supported",
            ),
            (doc(r#","jwks_uri":"http://app.example/jwks""#), "https"),
            (
                doc(r#","jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#),
                "symmetric",
            ),
        ] {
            let e = check(&body).unwrap_err();
            assert!(e.contains(why), "{e} should mention {why}");
        }
    }

    /// Answers from a queue and counts calls.
    struct Scripted(
        Mutex<Vec<Result<FetchedDocument, FetchError>>>,
        Mutex<usize>,
    );

    #[async_trait]
    impl DocumentFetcher for Scripted {
        async fn fetch(&self, _: &Url, max: usize) -> Result<FetchedDocument, FetchError> {
            assert_eq!(max, MAX_DOCUMENT_BYTES);
            *self.1.lock().unwrap() += 1;
            self.0.lock().unwrap().remove(0)
        }
    }

    #[tokio::test]
    async fn documents_are_cached_and_bad_ones_are_not() {
        let answer = |body: &[u8], freshness| {
            Ok(FetchedDocument {
                body: body.to_vec(),
                freshness,
            })
        };
        let f = Arc::new(Scripted(
            Mutex::new(vec![
                Err(FetchError::server_error("it answered 500")),
                answer(b"{}", None),
                answer(&doc(""), Some(Duration::from_secs(60))),
            ]),
            Mutex::new(0),
        ));
        let docs = MetadataDocuments::new(f.clone(), false);
        let t = UnixTime(1_000);
        let reason = |o| match o {
            Outcome::Failed { reason, .. } => reason,
            o => panic!("{o:?}"),
        };
        assert_eq!(
            reason(docs.client(&id(URL), t).await.unwrap()),
            "it answered 500"
        );
        assert!(reason(docs.client(&id(URL), t).await.unwrap()).contains("no client_id"));
        assert!(matches!(
            docs.client(&id(URL), t).await.unwrap(),
            Outcome::Fresh(_)
        ));
        // max-age=60 is kept for the five-minute floor.
        assert!(matches!(
            docs.client(&id(URL), t.plus(299)).await.unwrap(),
            Outcome::Fresh(_)
        ));
        assert_eq!(*f.1.lock().unwrap(), 3);
        assert!(docs.client(&id("https://app.example/"), t).await.is_err());
    }
}
