//! Authorization server metadata (RFC 8414 §2). One routes table feeds both this document and
//! the HTTP router, so the document advertises exactly what is served.

use serde::Serialize;

use crate::client_auth::{AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS};
use crate::client_keys::ALGORITHM_NAMES;
use crate::grant::GRANT_TYPES;
use crate::types::Issuer;

/// Paths of the endpoints under an issuer; the server mounts them at the root issuer and
/// under `/resources/{res_id}`.
pub mod paths {
    /// RFC 6749 §3.1 authorization endpoint.
    pub const AUTHORIZE: &str = "/oauth/authorize";
    /// RFC 7591 registration endpoint; RFC 7592 management is at `{REGISTER}/{client_id}`.
    pub const REGISTER: &str = "/oauth/register";
    /// RFC 6749 §3.2 token endpoint.
    pub const TOKEN: &str = "/oauth/token";
    /// RFC 7662 introspection endpoint.
    pub const INTROSPECT: &str = "/oauth/introspect";
    /// RFC 7009 revocation endpoint.
    pub const REVOKE: &str = "/oauth/revoke";
    /// JWKS, served from the root only (keys are shared by all issuers).
    pub const JWKS: &str = "/keys";
    /// The revocation feed MCP servers poll (Gatehouse's own, not an RFC endpoint).
    pub const REVOCATIONS: &str = "/revocations";
}

/// The metadata document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizationServerMetadata {
    /// Byte-identical to the issuer the document's URL was built from.
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// JWKS URL.
    pub jwks_uri: String,
    /// Introspection endpoint (RFC 7662).
    pub introspection_endpoint: String,
    /// Revocation endpoint (RFC 7009).
    pub revocation_endpoint: String,
    /// Registration endpoint (RFC 7591), present only when registration is on; MCP clients
    /// take its presence as the signal to register.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// Scopes offered by the MCP server(s) this issuer serves.
    pub scopes_supported: Vec<String>,
    /// The authorization code flow only.
    pub response_types_supported: Vec<&'static str>,
    /// Responses come back in the query.
    pub response_modes_supported: Vec<&'static str>,
    /// Grant types implemented.
    pub grant_types_supported: Vec<&'static str>,
    /// Client authentication at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms of `private_key_jwt` assertions at the token endpoint.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// Client authentication at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms of `private_key_jwt` assertions at the introspection endpoint.
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// Client authentication at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms of `private_key_jwt` assertions at the revocation endpoint.
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// PKCE: S256 only (OAuth 2.1 §4.1.1); MCP clients refuse an AS that omits it.
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// RFC 9207: every authorization response carries `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    /// CIMD-01 §5: URL client ids are accepted.
    pub client_id_metadata_document_supported: bool,
}

impl AuthorizationServerMetadata {
    /// The document for `issuer`; `public` is the root issuer, which serves the keys.
    pub fn new(
        issuer: &Issuer,
        public: &Issuer,
        scopes: Vec<String>,
        registration: bool,
        metadata_documents: bool,
    ) -> Self {
        AuthorizationServerMetadata {
            issuer: issuer.as_str().to_owned(),
            authorization_endpoint: issuer.join(paths::AUTHORIZE),
            token_endpoint: issuer.join(paths::TOKEN),
            jwks_uri: public.join(paths::JWKS),
            introspection_endpoint: issuer.join(paths::INTROSPECT),
            revocation_endpoint: issuer.join(paths::REVOKE),
            registration_endpoint: registration.then(|| issuer.join(paths::REGISTER)),
            scopes_supported: scopes,
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: GRANT_TYPES.to_vec(),
            token_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
            token_endpoint_auth_signing_alg_values_supported: ALGORITHM_NAMES.to_vec(),
            introspection_endpoint_auth_methods_supported: CONFIDENTIAL_AUTH_METHODS.to_vec(),
            introspection_endpoint_auth_signing_alg_values_supported: ALGORITHM_NAMES.to_vec(),
            revocation_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
            revocation_endpoint_auth_signing_alg_values_supported: ALGORITHM_NAMES.to_vec(),
            code_challenge_methods_supported: vec![crate::pkce::S256],
            authorization_response_iss_parameter_supported: true,
            client_id_metadata_document_supported: metadata_documents,
        }
    }
}
