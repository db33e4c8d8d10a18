//! What the authorization code flow stores: sessions, consents, grants, codes and refresh
//! tokens. Codes, refresh tokens and session ids are random secrets stored only as hashes.

use crate::clock::UnixTime;
use crate::secret::SecretHash;
use crate::types::{ClientId, GrantId, ResourceId, ScopeSet, UserId};

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Hash of the cookie value.
    pub hash: SecretHash,
    /// Who signed in.
    pub user: UserId,
    /// When they signed in (absolute expiry counts from here).
    pub created_at: UnixTime,
    /// When the session was last used, to about a minute (idle expiry counts from here).
    pub last_seen_at: UnixTime,
    /// How the person signed in.
    pub method: crate::signin::Method,
}

impl Session {
    /// How operators name it: `ses_` and the first 16 hex digits of the cookie's hash. It
    /// tells nothing about the cookie, which has 256 random bits.
    pub fn id(&self) -> String {
        let hash = self.hash.as_str();
        format!("ses_{}", &hash[..hash.len().min(16)])
    }
}

/// What a person allowed a client to do at an MCP server; remembered so that they are not
/// asked again unless the client wants more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The person.
    pub user: UserId,
    /// The client.
    pub client: ClientId,
    /// The MCP server.
    pub resource: ResourceId,
    /// Every scope allowed so far.
    pub scopes: ScopeSet,
    /// When it was last given.
    pub granted_at: UnixTime,
}

/// One authorization: a person's decision for one client and MCP server, and every token
/// issued from it. Revoking it revokes them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `gr_…`
    pub id: GrantId,
    /// The client it was given to.
    pub client: ClientId,
    /// The person who gave it.
    pub user: UserId,
    /// The MCP server it is for.
    pub resource: ResourceId,
    /// The issuer whose authorization endpoint created it; only that issuer's token endpoint
    /// may redeem its code and refresh tokens.
    pub issuer: String,
    /// The scopes granted. Refreshes may narrow, never widen them.
    pub scopes: ScopeSet,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<UnixTime>,
}

/// An authorization code (OAuth 2.1 §4.1.2), bound to everything the token request must
/// repeat or prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// Hash of the code.
    pub hash: SecretHash,
    /// Its grant.
    pub grant: GrantId,
    /// The redirect URI used in the authorization request.
    pub redirect_uri: String,
    /// Whether the request carried `redirect_uri` (then the token request must repeat it).
    pub redirect_uri_sent: bool,
    /// The S256 `code_challenge`.
    pub challenge: String,
    /// When it stops being valid.
    pub expires_at: UnixTime,
    /// When it was first redeemed.
    pub used_at: Option<UnixTime>,
}

/// A refresh token. Each use rotates it: the new one is stored and this one is marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// Hash of the token.
    pub hash: SecretHash,
    /// Its grant.
    pub grant: GrantId,
    /// When it was issued.
    pub created_at: UnixTime,
    /// When it stops being valid.
    pub expires_at: UnixTime,
    /// When it was rotated (used), if it was.
    pub rotated_at: Option<UnixTime>,
    /// The answer given when it was rotated, for a retry within the grace window.
    pub retry: Option<RetryAnswer>,
}

/// The token response given when a refresh token was rotated, sealed with a key derived from
/// that refresh token, so only its holder can read it back, and only by repeating the
/// identical request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryAnswer {
    /// SHA-256 of the request's parameters.
    pub request_hash: SecretHash,
    /// The sealed response (AES-256-GCM, nonce first).
    pub sealed: Vec<u8>,
}

/// An access token recorded under its grant, so that revoking the grant revokes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedAccess {
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`.
    pub expires_at: UnixTime,
}

/// Tokens issued from a grant, recorded as one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuance {
    /// The grant, which must exist and not be revoked.
    pub grant: GrantId,
    /// The access token.
    pub access: IssuedAccess,
    /// A new refresh token, if one was issued.
    pub refresh: Option<RefreshRecord>,
    /// The refresh token this replaces: it must not have been rotated already.
    pub rotates: Option<Rotation>,
}

/// The rotation of a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The hash of the token being replaced.
    pub old: SecretHash,
    /// When.
    pub at: UnixTime,
    /// The answer to give a retry.
    pub retry: Option<RetryAnswer>,
}

/// What to delete in a clean-up pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prune {
    /// The current time: expired codes, refresh tokens and revocation records go.
    pub now: UnixTime,
    /// Sessions last seen before this go.
    pub sessions_idle_before: UnixTime,
    /// Sessions created before this go.
    pub sessions_created_before: UnixTime,
    /// Self-registered clients neither used nor created since this go.
    pub registrations_unused_before: UnixTime,
    /// Self-registered clients that never obtained a token and were created before this go.
    pub registrations_never_used_before: UnixTime,
    /// Audit events from before this go.
    pub audit_before: UnixTime,
    /// At most this many records of each kind go in one pass, so that a pass holds the
    /// database briefly however much has piled up; [`Pruned::more`] says to run another.
    pub limit: u32,
}

/// What a clean-up pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Records deleted.
    pub deleted: u64,
    /// Whether some kind reached the pass's limit: there may be more to delete.
    pub more: bool,
}

impl Pruned {
    /// Counts `deleted` records of one kind, under `limit`.
    pub fn add(&mut self, deleted: u64, limit: u32) {
        self.deleted += deleted;
        self.more |= deleted >= u64::from(limit);
    }
}
