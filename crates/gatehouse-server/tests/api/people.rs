//! Helpers for the interactive flow: people, registrations, PKCE, and a browser that fills
//! in the real sign-in and consent forms.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::password::Password;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::TestApp;

pub const EMAIL: &str = "ada@example.com";
pub const PASSWORD: &str = "correct horse battery";
pub const REDIRECT: &str = "http://127.0.0.1:53682/callback";

impl TestApp {
    pub async fn add_user(&self, email: &str, password: &str) {
        self.op()
            .create_user(email, &Password::new_checked(password).unwrap(), false)
            .await
            .unwrap();
    }

    /// Registers a client at `issuer_path`'s registration endpoint; returns the 201 body.
    pub async fn register(&self, issuer_path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{issuer_path}/oauth/register", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body
    }

    /// A public client like MCP Inspector's, registered at `issuer_path`.
    pub async fn register_public(&self, issuer_path: &str) -> String {
        let body = self
            .register(
                issuer_path,
                json!({"client_name": "Test host", "redirect_uris": [REDIRECT],
                       "grant_types": ["authorization_code", "refresh_token"],
                       "application_type": "native"}),
            )
            .await;
        body["client_id"].as_str().unwrap().to_owned()
    }

    /// A browser with its own cookie jar, following no redirects.
    pub fn browser(&self) -> Browser {
        Browser {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// POSTs a token request without client authentication headers.
    pub async fn token_request(&self, issuer_path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .post_form(&format!("{issuer_path}/oauth/token"), form, None)
            .await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }
}

/// A PKCE pair.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = gatehouse_core::random::secret("v");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// The query of an authorization URL.
pub fn authorize_query(client_id: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code");
    q.append_pair("client_id", client_id);
    q.append_pair("redirect_uri", REDIRECT);
    q.append_pair("code_challenge", &pkce.challenge);
    q.append_pair("code_challenge_method", "S256");
    q.append_pair("state", "st4te");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    q.finish()
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    query_of(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

pub struct Browser {
    pub base: String,
    pub http: reqwest::Client,
}

/// A response as the browser saw it.
pub struct Seen {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Browser {
    pub async fn get(&self, path_or_url: &str) -> Seen {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        seen(self.http.get(url).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, form: &[(String, String)]) -> Seen {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        seen(r).await
    }

    /// Signs in through the sign-in page reached from `login_location`; returns where the
    /// server sends the browser next.
    pub async fn sign_in(&self, login_location: &str, email: &str, password: &str) -> Seen {
        let page = self.get(login_location).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let mut form = form_inputs(&page.body, "/login");
        form.push(("email".into(), email.into()));
        form.push(("password".into(), password.into()));
        self.post("/login", &form).await
    }

    /// Submits the consent page with `decision`; returns the redirect to the client.
    pub async fn decide(&self, consent: &Seen, decision: &str) -> Seen {
        let action = attr_after(&consent.body, "class=\"decision\"", "action").unwrap();
        let form_html = consent.body.split("class=\"decision\"").nth(1).unwrap();
        let form_html = form_html.split("</form>").next().unwrap();
        let mut form = hidden_inputs(form_html);
        form.push(("decision".into(), decision.into()));
        self.post(&action, &form).await
    }

    /// Runs an authorization request at `issuer_path` to the end: signs in if asked,
    /// allows on the consent page if shown. Returns the redirect URL to the client.
    pub async fn authorize(&self, issuer_path: &str, query: &str) -> String {
        let mut r = self
            .get(&format!("{issuer_path}/oauth/authorize?{query}"))
            .await;
        if r.status == 303
            && r.location
                .as_deref()
                .is_some_and(|l| l.starts_with("/login"))
        {
            let after = self
                .sign_in(r.location.as_deref().unwrap(), EMAIL, PASSWORD)
                .await;
            assert_eq!(after.status, 303, "{}", after.body);
            r = self.get(after.location.as_deref().unwrap()).await;
        }
        if r.status == 200 {
            r = self.decide(&r, "allow").await;
        }
        assert!(
            matches!(r.status, 302 | 303),
            "expected a redirect, got {}: {}",
            r.status,
            r.body
        );
        r.location.unwrap()
    }
}

async fn seen(r: reqwest::Response) -> Seen {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let location = headers
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    Seen {
        status,
        location,
        headers,
        body: r.text().await.unwrap(),
    }
}

/// Decodes the character references askama writes (`&#38;`, `&#x27;`, `&amp;`, …).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `(name, value)` of the hidden inputs of the form posting to `action` in `html`.
pub fn form_inputs(html: &str, action: &str) -> Vec<(String, String)> {
    let marker = format!("action=\"{action}\"");
    let form = html
        .split(&marker)
        .nth(1)
        .unwrap_or_else(|| panic!("no form posting to {action}: {html}"));
    hidden_inputs(form.split("</form>").next().unwrap())
}

/// `(name, value)` of every hidden input in `html`.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\"")
        .skip(1)
        .map(|tag| {
            let tag = tag.split('>').next().unwrap();
            let get = |a: &str| {
                tag.split(&format!("{a}=\""))
                    .nth(1)
                    .and_then(|v| v.split('"').next())
                    .map(unescape)
                    .unwrap_or_default()
            };
            (get("name"), get("value"))
        })
        .collect()
}

fn attr_after(html: &str, marker: &str, attr: &str) -> Option<String> {
    let rest = html.split(marker).nth(1)?;
    let before_marker = html.split(marker).next()?;
    // The attribute may come before or after the marker inside the same tag.
    let tag_start = before_marker.rfind('<')?;
    let tag = format!("{}{}", &before_marker[tag_start..], rest.split('>').next()?);
    tag.split(&format!("{attr}=\""))
        .nth(1)
        .and_then(|v| v.split('"').next())
        .map(unescape)
}
