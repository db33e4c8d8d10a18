//! The router: every route, from the same path constants the metadata document uses.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use gatehouse_core::metadata::paths;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::error::not_found;
use crate::routes::{
    AppState, admin_api, admin_ui, authorize, email, metadata, oauth, ops, passkey, register, sso,
    ui,
};
use crate::throttle;

/// Prefix of the per-MCP-server endpoints.
const RESOURCE: &str = "/resources/{id}";

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    // Metadata, keys and the token endpoint are called from browsers (web-based MCP hosts):
    // open CORS, no credentials.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(Any)
        .max_age(Duration::from_secs(3600));
    let registration = format!("{}/{{client_id}}", paths::REGISTER);
    let limit_tokens =
        || post(oauth::token).route_layer(from_fn_with_state(state.clone(), throttle::token_ip));
    let mut public = Router::new()
        .route(paths::TOKEN, limit_tokens())
        .route(&format!("{RESOURCE}{}", paths::TOKEN), limit_tokens())
        .route(paths::REVOKE, post(oauth::revoke))
        .route(paths::REVOCATIONS, get(oauth::revocations))
        .route(
            &format!("{RESOURCE}{}", paths::REVOCATIONS),
            get(oauth::revocations),
        )
        .route(&format!("{RESOURCE}{}", paths::REVOKE), post(oauth::revoke))
        .route(paths::REGISTER, post(register::register))
        .route(
            &format!("{RESOURCE}{}", paths::REGISTER),
            post(register::register),
        )
        .route(&registration, get(register::read).delete(register::delete))
        .route(
            &format!("{RESOURCE}{registration}"),
            get(register::read).delete(register::delete),
        );
    for p in metadata::ROOT_PATHS {
        public = public.route(p, get(metadata::document));
    }
    for p in metadata::RESOURCE_PATHS {
        public = public.route(p, get(metadata::document));
    }
    for p in metadata::JWKS_PATHS {
        public = public.route(p, get(metadata::jwks));
    }
    let public = public.layer(cors);

    let private = Router::new()
        .route(paths::INTROSPECT, post(oauth::introspect))
        .route(
            &format!("{RESOURCE}{}", paths::INTROSPECT),
            post(oauth::introspect),
        )
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route(
            "/api/v1/connections/{id}/auth-requests/{login_request_id}/user",
            post(sso::receive_user),
        );

    // Pages people see: no CORS, never framed, never cached. Authorization and sign-in are
    // limited per client IP.
    let pages = Router::new()
        .route(paths::AUTHORIZE, get(authorize::get).post(authorize::post))
        .route(
            &format!("{RESOURCE}{}", paths::AUTHORIZE),
            get(authorize::get).post(authorize::post),
        )
        .route("/login", get(ui::login_form).post(ui::login))
        .route("/login/email", post(email::send_code))
        .route("/login/email/code", post(email::enter_code))
        .route("/login/email/link", get(email::follow_link))
        .route("/login/passkey/options", post(passkey::sign_in_options))
        .route("/login/passkey", post(passkey::sign_in))
        .route("/sso/v1/connections/{id}/start", get(sso::start))
        .route(
            "/sso/v1/connections/{id}/partner:callback",
            get(sso::partner_callback),
        )
        .route(
            "/sso/v1/connections/{id}/callback",
            get(sso::provider_callback),
        )
        .route_layer(from_fn_with_state(state.clone(), throttle::page_ip))
        .route("/account", get(passkey::account))
        .route(
            "/account/passkeys/options",
            post(passkey::registration_options),
        )
        .route("/account/passkeys", post(passkey::register))
        .route("/account/passkeys/{id}/delete", post(passkey::remove))
        .route("/admin", get(admin_ui::servers))
        .route("/admin/servers", post(admin_ui::create_server))
        .route("/admin/servers/{id}", get(admin_ui::server))
        .route("/admin/servers/{id}/delete", post(admin_ui::delete_server))
        .route("/admin/servers/{id}/update", post(admin_ui::update_server))
        .route("/admin/servers/{id}/clients", post(admin_ui::create_client))
        .route(
            "/admin/clients/{client_id}/rotate",
            post(admin_ui::rotate_client),
        )
        .route(
            "/admin/clients/{client_id}/delete",
            post(admin_ui::delete_client),
        )
        .route(
            "/admin/clients/{client_id}/disabled",
            post(admin_ui::set_client_disabled),
        )
        .route("/admin/consents/revoke", post(admin_ui::revoke_consent))
        .route(
            "/admin/people",
            get(admin_ui::people).post(admin_ui::create_person),
        )
        .route("/admin/people/{id}", get(admin_ui::person))
        .route("/admin/people/{id}/delete", post(admin_ui::delete_person))
        .route(
            "/admin/people/{id}/disabled",
            post(admin_ui::set_person_disabled),
        )
        .route(
            "/admin/people/{id}/password",
            post(admin_ui::reset_password),
        )
        .route(
            "/admin/people/{id}/sessions/end",
            post(admin_ui::end_sessions),
        )
        .route("/admin/people/{id}/admin", post(admin_ui::set_admin))
        .route("/admin/keys", post(admin_ui::create_key))
        .route("/admin/keys/{id}/revoke", post(admin_ui::revoke_key))
        .route(
            "/admin/sign-in",
            get(admin_ui::sign_in).post(admin_ui::save_sign_in),
        )
        .route("/admin/connections", post(admin_ui::create_connection))
        .route(
            "/admin/connections/{id}/enabled",
            post(admin_ui::set_connection_enabled),
        )
        .route(
            "/admin/connections/{id}/delete",
            post(admin_ui::delete_connection),
        )
        .route("/admin/signing-keys", get(admin_ui::signing_keys))
        .route(
            "/admin/signing-keys/rotate",
            post(admin_ui::rotate_signing_keys),
        )
        .route("/admin/audit", get(admin_ui::audit_log))
        .route(
            "/admin/failures",
            get(crate::routes::admin::ui::failures::page),
        )
        .route("/admin/audit/export", get(admin_ui::audit_export))
        .route("/logout", post(ui::logout))
        .route("/", get(ui::home))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .route("/assets/gatehouse.css", get(ui::stylesheet))
        .route("/assets/favicon.svg", get(ui::favicon))
        .route("/assets/passkey.js", get(ui::passkey_script))
        .route("/favicon.ico", get(ui::favicon))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(ui::PAGE_CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ));

    public
        .merge(private)
        .merge(pages)
        .merge(admin_api::router())
        .route_layer(from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .fallback(|| async { not_found("no such endpoint") })
        .layer(CatchPanicLayer::new())
        .layer(
            // The span has the method and path only: a query string could carry a token.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                tracing::info_span!("http", method = %req.method(), path = req.uri().path())
            }),
        )
        .with_state(state)
}
