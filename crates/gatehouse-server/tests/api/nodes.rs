//! Two `gatehouse serve` processes on one PostgreSQL database, as behind a load balancer: they
//! share the public URL, and what one node creates works through the other. Races between
//! them have one winner.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use gatehouse_core::admin::Operator;
use gatehouse_core::audit::Recorder;
use gatehouse_core::model::{NewResource, ScopeDef};
use gatehouse_core::password::Password;
use gatehouse_core::{Clock, ResourceUri, SystemClock};
use gatehouse_store::postgres_testing as pg;
use serde_json::Value;

use crate::helpers::claims;
use crate::people::*;
use crate::process::{Node, free_port};

/// Starts a node on `port` with `public_url`, on the database at `database_url`.
async fn node(port: u16, public_url: &str, database_url: &str, dir: &std::path::Path) -> Node {
    Node::start(
        port,
        &[
            ("GATEHOUSE_DATABASE_URL", database_url),
            ("GATEHOUSE_PUBLIC_URL", public_url),
            ("GATEHOUSE_DATA_DIR", dir.to_str().unwrap()),
            ("GATEHOUSE_REFRESH_INTERVAL_MS", "100"),
        ],
    )
    .await
}

/// A browser going to `node` with the cookies of `http` (one host for both nodes: cookies
/// ignore ports).
fn browser_at(node: &Node, http: &reqwest::Client) -> Browser {
    Browser {
        base: node.url.clone(),
        http: http.clone(),
    }
}

async fn token(node: &Node, path: &str, form: &[(&str, String)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}/oauth/token", node.url))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn two_nodes_on_one_postgresql_database_share_every_flow() {
    let Some(base_url) = pg::database_url() else {
        return;
    };
    let schema = pg::fresh_schema(&base_url, "nodes").await;
    let db = pg::url_in(&base_url, &schema);
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (free_port(), free_port());
    let public = format!("http://127.0.0.1:{pa}");
    let a = node(pa, &public, &db, dir.path()).await;
    let b = node(pb, &public, &db, dir.path()).await;

    // An operator registers an MCP server and a person, straight into the database.
    let store = gatehouse_store::PgStore::connect(&db, Default::default())
        .await
        .unwrap();
    let recorder = Recorder::default();
    let op = Operator::new(&store, &recorder, "test", SystemClock.now());
    let r = op
        .register_resource(NewResource::new(
            "To-do list",
            ResourceUri::parse("http://127.0.0.1:8001/mcp").unwrap(),
            vec![ScopeDef::parse("todo:read").unwrap()],
        ))
        .await
        .unwrap();
    op.create_user(EMAIL, &Password::new_checked(PASSWORD).unwrap(), false)
        .await
        .unwrap();
    // The MCP server's own client, to introspect with (public clients may not).
    let (agent, agent_secret) = op
        .create_agent_client(
            r.id.as_str(),
            "introspector",
            gatehouse_core::ScopeSet::parse("todo:read").unwrap(),
        )
        .await
        .unwrap();
    let path = format!("/resources/{}", r.id);

    // Both nodes serve it once they notice (they poll the change version).
    for n in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = reqwest::get(format!(
                "{}/.well-known/oauth-authorization-server{path}",
                n.url
            ))
            .await
            .unwrap()
            .status();
            if s == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "{} never saw the server", n.url);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Both publish the same keys.
    let jwks = |n: &Node| {
        let url = format!("{}{path}/.well-known/jwks.json", n.url);
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(jwks(&a).await, jwks(&b).await);

    // Registered at A.
    let reg: Value = reqwest::Client::new()
        .post(format!("{}{path}/oauth/register", a.url))
        .json(
            &serde_json::json!({"client_name": "Test host", "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"], "application_type": "native"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = reg["client_id"].as_str().unwrap().to_owned();

    // Authorized at B (sign-in and consent there), for the client A registered.
    let jar = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let p = pkce();
    let q = authorize_query(
        &client,
        &p,
        &[
            ("resource", r.url.as_str()),
            ("scope", "todo:read offline_access"),
        ],
    );
    let to = browser_at(&b, &jar).authorize(&path, &q).await;
    let code = param(&to, "code").expect("a code from B");

    // The session and the consent B recorded are honoured by A: straight back with a code.
    let p2 = pkce();
    let q2 = authorize_query(
        &client,
        &p2,
        &[
            ("resource", r.url.as_str()),
            ("scope", "todo:read offline_access"),
        ],
    );
    let again = browser_at(&a, &jar)
        .get(&format!("{path}/oauth/authorize?{q2}"))
        .await;
    assert_eq!(
        again.status, 302,
        "A knows B's session and consent: {}",
        again.body
    );
    let code2 = param(again.location.as_deref().unwrap(), "code").unwrap();

    // B's code is exchanged at A, once; A's code at B.
    let exchange = |code: &str, verifier: &str| {
        [
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("client_id", client.clone()),
            ("code_verifier", verifier.to_owned()),
        ]
    };
    let (status, first) = token(&a, &path, &exchange(&code, &p.verifier)).await;
    assert_eq!(status, 200, "{first}");
    let (status, replay) = token(&b, &path, &exchange(&code, &p.verifier)).await;
    assert_eq!(status, 400, "a code is used once, across nodes: {replay}");
    assert_eq!(replay["error"], "invalid_grant");
    let (status, second) = token(&b, &path, &exchange(&code2, &p2.verifier)).await;
    assert_eq!(status, 200, "{second}");
    let sub = claims(second["access_token"].as_str().unwrap())["sub"].clone();
    assert_eq!(claims(first["access_token"].as_str().unwrap())["sub"], sub);
    // The replayed code revoked what it issued (the first exchange's grant), on both nodes.
    let introspect = |n: &Node, t: String| {
        let url = format!("{}{path}/oauth/introspect", n.url);
        let (id, secret) = (
            agent.id.to_string(),
            agent_secret.expose_secret().to_owned(),
        );
        async move {
            reqwest::Client::new()
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("token", t.as_str())])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let first_access = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&b, first_access).await["active"], false);
    let second_access = second["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&a, second_access.clone()).await["active"], true);

    // Fifty identical refreshes of one token, half through each node, at once: one
    // successor. The losers are identical retries, so they get the winner's answer.
    let rt = second["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: &str| {
        [
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", rt.to_owned()),
            ("client_id", client.clone()),
        ]
    };
    let fifty = refresh(&rt);
    let answers =
        join_all((0..50).map(|i| token(if i % 2 == 0 { &a } else { &b }, &path, &fifty))).await;
    let mut successors: Vec<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["refresh_token"].as_str().unwrap().to_owned()
        })
        .collect();
    successors.dedup();
    assert_eq!(successors.len(), 1, "exactly one successor: {successors:?}");
    let (status, body) = token(&a, &path, &refresh(&successors[0])).await;
    assert_eq!(status, 200, "the one successor works: {body}");

    // Revoked at B, inactive at A.
    let newest = body["access_token"].as_str().unwrap().to_owned();
    let r = reqwest::Client::new()
        .post(format!("{}{path}/oauth/revoke", b.url))
        .form(&[
            ("token", body["refresh_token"].as_str().unwrap()),
            ("client_id", client.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = introspect(&a, newest).await;
    assert_eq!(seen["active"], false, "{seen}");
    store.close().await;
}
