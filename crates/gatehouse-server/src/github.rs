//! GitHub and GitHub Enterprise Server as identity providers.
//!
//! GitHub is not OpenID Connect: it has no discovery, no ID token and no nonce. Gatehouse
//! uses its OAuth web flow (authorization code with PKCE S256 and `state`), then its REST
//! API with the access token: `GET /user` says who signed in, and `GET /user/emails` gives
//! the primary address and whether GitHub verified it. The access token is used for those
//! two calls and dropped.
//!
//! The calls are plain `reqwest`, not an OAuth client library: GitHub refuses a code with
//! `200 OK` and an `error` body, which a generic client reports as an unreadable token
//! response instead of GitHub's reason.

use gatehouse_core::login::{LoginError, StartedLogin};
use gatehouse_core::signin::GITHUB_SCOPES;
use openidconnect::PkceCodeChallenge;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::oidc::{pkce_verifier, read_body};

/// The REST API version asked for.
const API_VERSION: &str = "2022-11-28";

/// A GitHub (or Enterprise Server) OAuth app.
pub struct Github<'a> {
    /// `https://github.com` or the Enterprise Server's URL, without a trailing slash.
    pub base_url: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    name: Option<String>,
    avatar_url: Option<String>,
    html_url: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    primary: bool,
    verified: bool,
}

impl Github<'_> {
    /// The REST API's root: `api.github.com` for github.com, `{base}/api/v3` for an
    /// Enterprise Server.
    fn api(&self) -> String {
        if self.base_url == "https://github.com" {
            "https://api.github.com".to_owned()
        } else {
            format!("{}/api/v3", self.base_url)
        }
    }

    /// Where to send the browser for `started`; GitHub sends it back to `callback`.
    pub fn authorization_url(
        &self,
        started: &StartedLogin,
        callback: &str,
    ) -> Result<String, LoginError> {
        let mut url = url::Url::parse(&format!("{}/login/oauth/authorize", self.base_url))
            .map_err(|e| LoginError::Upstream(format!("the GitHub URL is not usable: {e}")))?;
        let verifier = pkce_verifier(&started.browser_secret);
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
        url.query_pairs_mut()
            .append_pair("client_id", self.client_id)
            .append_pair("redirect_uri", callback)
            .append_pair("scope", GITHUB_SCOPES)
            .append_pair("state", &started.state)
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        Ok(url.to_string())
    }

    /// Exchanges `code` for an access token, and reads the person's account and primary
    /// email with it. The claims are those of an OpenID Connect profile: `sub` is the
    /// GitHub account's numeric id, which never changes (a login name can).
    pub async fn exchange(
        &self,
        http: &reqwest::Client,
        browser_secret: &str,
        code: &str,
        callback: &str,
    ) -> Result<Map<String, Value>, LoginError> {
        let verifier = pkce_verifier(browser_secret);
        let token_url = format!("{}/login/oauth/access_token", self.base_url);
        let resp = http
            .post(&token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("client_id", self.client_id),
                ("client_secret", self.client_secret),
                ("code", code),
                ("redirect_uri", callback),
                ("code_verifier", verifier.secret()),
            ])
            .send()
            .await
            .map_err(|e| unreachable_github(&token_url, &e))?;
        let status = resp.status();
        let answer: TokenAnswer = serde_json::from_slice(&read_body(resp, &token_url).await?)
            .map_err(|e| {
                LoginError::Upstream(format!(
                    "GitHub's token endpoint answered {status} with something that is not its JSON: {e}"
                ))
            })?;
        let token = match answer {
            TokenAnswer {
                error: Some(error),
                error_description,
                ..
            } => {
                let said = error_description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                return Err(LoginError::Upstream(format!(
                    "GitHub refused the authorization code (`{error}`{said})"
                )));
            }
            TokenAnswer {
                access_token: Some(t),
                ..
            } if status.is_success() && !t.is_empty() => t,
            _ => {
                return Err(LoginError::Upstream(format!(
                    "GitHub's token endpoint answered {status} without an access token"
                )));
            }
        };
        let user: User = self.get(http, &token, "/user").await?;
        let emails: Vec<Email> = self.get(http, &token, "/user/emails").await?;
        let primary = emails.iter().find(|e| e.primary).ok_or_else(|| {
            LoginError::InvalidClaims(format!(
                "GitHub account {} has no primary email address",
                user.login
            ))
        })?;
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(user.id.to_string()));
        claims.insert("email".into(), json!(primary.email));
        claims.insert("email_verified".into(), json!(primary.verified));
        claims.insert(
            "name".into(),
            json!(
                user.name
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| user.login.clone())
            ),
        );
        claims.insert("preferred_username".into(), json!(user.login));
        if let Some(p) = user.avatar_url {
            claims.insert("picture".into(), json!(p));
        }
        if let Some(p) = user.html_url {
            claims.insert("profile".into(), json!(p));
        }
        Ok(claims)
    }

    /// `GET {api}{path}` with the access token, read as `T`.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        http: &reqwest::Client,
        token: &str,
        path: &str,
    ) -> Result<T, LoginError> {
        let url = format!("{}{path}", self.api());
        let resp = http
            .get(&url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .send()
            .await
            .map_err(|e| unreachable_github(&url, &e))?;
        let status = resp.status();
        let body = read_body(resp, &url).await?;
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            let hint = if path == "/user/emails" && matches!(status.as_u16(), 403 | 404) {
                " (the OAuth app needs the user:email scope; a GitHub App, read access to email addresses)"
            } else {
                ""
            };
            return Err(LoginError::Upstream(format!(
                "GitHub answered {status} to GET {path}{message}{hint}"
            )));
        }
        serde_json::from_slice(&body).map_err(|e| {
            LoginError::Upstream(format!(
                "GitHub's answer to GET {path} is not readable: {e}"
            ))
        })
    }
}

fn unreachable_github(url: &str, e: &reqwest::Error) -> LoginError {
    LoginError::Upstream(format!("GitHub could not be reached at {url}: {e}"))
}
