//! Signing in with a one-time code (or link) sent by email.
//!
//! 1. [`Engine::start_email_sign_in`]: the person types their address; a challenge is stored
//!    with an eight-digit code, a link secret and a secret for the browser's cookie, each
//!    only as a hash. The caller mails [`StartedEmailSignIn::message`] and sets the cookie.
//! 2. [`Engine::finish_email_sign_in`]: the same browser sends the code, or follows the link
//!    and confirms. A challenge lives [`EMAIL_CODE_TTL`], is used once, and takes
//!    [`MAX_CODE_ATTEMPTS`] guesses; an address gets at most [`CODES_PER_WINDOW`] codes per
//!    [`CODE_WINDOW`].
//!
//! Receiving the code proves the address: the person with that email is signed in, and an
//! address without an account gets one (without a password), as a connection does.
//!
//! The code is short, so its hash is salted with the browser's 256-bit secret: a copy of the
//! database does not give the codes away, and a code is good only in the browser that asked.

use crate::audit::{AuditEvent, EventType};
use crate::clock::UnixTime;
use crate::engine::Engine;
use crate::model::{User, normalize_email};
use crate::secret::SecretHash;
use crate::signin::Method;
use crate::store::StoreError;
use crate::types::{EmailChallengeId, Issuer, ResourceId, UserId};

/// How long a code (and its link) can be used.
pub const EMAIL_CODE_TTL: i64 = 600;
/// Guesses allowed per code; the code is dead after that.
pub const MAX_CODE_ATTEMPTS: u32 = 5;
/// Codes an address can be sent per [`CODE_WINDOW`].
pub const CODES_PER_WINDOW: u32 = 5;
/// The window, in seconds, codes per address are counted in.
pub const CODE_WINDOW: i64 = 900;
/// Digits in a code.
const CODE_DIGITS: usize = 8;

/// One code sent to one address, from sending until it is used or expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChallenge {
    /// `ec_…`
    pub id: EmailChallengeId,
    /// The address the code went to, normalised.
    pub email: String,
    /// Hash of `{browser secret}.{code}`.
    pub code_hash: SecretHash,
    /// Hash of the link's token (`{id}.{secret}`).
    pub link_hash: SecretHash,
    /// Hash of the secret in the cookie of the browser that asked.
    pub browser_hash: SecretHash,
    /// Where the browser goes once signed in (an authorization request), or empty.
    pub return_to: String,
    /// The MCP server the sign-in is for, when known.
    pub server: Option<ResourceId>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// Guesses made so far.
    pub attempts: u32,
    pub used_at: Option<UnixTime>,
}

/// Why an email sign-in failed. Messages are shown to the person.
#[derive(Debug, thiserror::Error)]
pub enum EmailCodeError {
    /// The address is not one.
    #[error("{0}")]
    InvalidEmail(String),
    /// Too many codes were sent to this address lately.
    #[error(
        "too many codes were sent to this address: wait {0} minutes, or use the last code you received"
    )]
    TooManyCodes(i64),
    /// The browser has no code in progress (never asked, cookie gone, or another browser).
    #[error(
        "this browser has no sign-in code in progress: ask for a code again, and use it in the browser you asked in"
    )]
    NoChallenge,
    /// The code is more than [`EMAIL_CODE_TTL`] old.
    #[error("this code expired: codes last 10 minutes; ask for a new one")]
    Expired,
    /// The code (or link) was used already.
    #[error("this code was already used: each code signs in once; ask for a new one")]
    AlreadyUsed,
    /// Too many wrong guesses.
    #[error("too many wrong codes: ask for a new one")]
    TooManyAttempts,
    /// The code is not the one sent.
    #[error("that is not the code we sent: check the latest email ({0} tries left)")]
    WrongCode(u32),
    /// The link is not one we sent (or was cut short by the mail program).
    #[error(
        "this sign-in link is not valid: open the whole link from the latest email, or type the code"
    )]
    WrongLink,
    /// The person's account is disabled.
    #[error("this account is disabled: ask the administrator of this server")]
    AccountDisabled(UserId),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EmailCodeError {
    /// A short machine-readable code (for the audit log and tests).
    pub fn code(&self) -> &'static str {
        match self {
            EmailCodeError::InvalidEmail(_) => "invalid_email",
            EmailCodeError::TooManyCodes(_) => "too_many_codes",
            EmailCodeError::NoChallenge => "no_code_in_progress",
            EmailCodeError::Expired => "code_expired",
            EmailCodeError::AlreadyUsed => "code_used",
            EmailCodeError::TooManyAttempts => "too_many_attempts",
            EmailCodeError::WrongCode(_) => "wrong_code",
            EmailCodeError::WrongLink => "wrong_link",
            EmailCodeError::AccountDisabled(_) => "account_disabled",
            EmailCodeError::Store(_) => "temporarily_unavailable",
        }
    }
}

/// An email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// A code just created: the message to mail and the browser's cookie value.
#[derive(Debug)]
pub struct StartedEmailSignIn {
    pub challenge: EmailChallenge,
    pub message: EmailMessage,
    /// `{challenge id}.{secret}`: the browser's cookie.
    pub browser_cookie: String,
}

/// How the person proves they received the message.
#[derive(Debug, Clone, Copy)]
pub enum EmailProof<'a> {
    /// The code as typed (spaces and dashes are ignored).
    Code(&'a str),
    /// The link's `token`.
    Link(&'a str),
}

/// A finished email sign-in.
#[derive(Debug)]
pub struct FinishedEmailSignIn {
    pub user: User,
    /// Whether the address had no account, and one was made.
    pub created: bool,
    pub return_to: String,
    pub server: Option<ResourceId>,
}

/// The challenge id a cookie or link token (`{id}.{secret}`) names.
pub fn challenge_in(value: &str) -> Option<EmailChallengeId> {
    let (id, _) = value.split_once('.')?;
    EmailChallengeId::parse(id).ok()
}

/// A random code of [`CODE_DIGITS`] digits. A u64 modulo 10⁸ is uniform to within 10⁻¹¹.
fn new_code() -> String {
    let n = u64::from_le_bytes(crate::random::bytes::<8>()) % 10u64.pow(CODE_DIGITS as u32);
    format!("{n:0width$}", width = CODE_DIGITS)
}

/// A code as written in the message: `1234 5678`.
fn spaced(code: &str) -> String {
    format!("{} {}", &code[..4], &code[4..])
}

fn code_hash(browser_secret: &str, code: &str) -> SecretHash {
    SecretHash::of(&format!("{browser_secret}.{code}"))
}

/// The address the link in a message points at.
pub fn link_url(public: &Issuer, token: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .finish();
    public.join(&format!("/login/email/link?{q}"))
}

impl Engine {
    /// Creates a code for `email` (as typed) and the message carrying it, for a browser that
    /// will come back to `return_to` (checked by the caller) for `server`, named `for_name`.
    pub async fn start_email_sign_in(
        &self,
        email: &str,
        return_to: &str,
        server: Option<ResourceId>,
        for_name: &str,
    ) -> Result<StartedEmailSignIn, EmailCodeError> {
        let email = normalize_email(email).map_err(|e| EmailCodeError::InvalidEmail(e.0))?;
        let now = self.now();
        let store = self.store();
        // The codes sent in the last CODE_WINDOW seconds.
        let since = UnixTime(now.0 - CODE_WINDOW + 1);
        let recent = store.email_challenges_since(&email, since).await?;
        if recent.len() >= CODES_PER_WINDOW as usize {
            let oldest = recent.iter().map(|c| c.created_at.0).min().unwrap_or(now.0);
            let wait = (oldest + CODE_WINDOW - now.0).max(60);
            return Err(EmailCodeError::TooManyCodes((wait + 59) / 60));
        }
        let id = EmailChallengeId::generate();
        let code = new_code();
        let browser_secret = crate::random::secret("");
        let link_token = format!("{id}.{}", crate::random::secret(""));
        let challenge = EmailChallenge {
            id: id.clone(),
            email: email.clone(),
            code_hash: code_hash(&browser_secret, &code),
            link_hash: SecretHash::of(&link_token),
            browser_hash: SecretHash::of(&browser_secret),
            return_to: return_to.to_owned(),
            server,
            created_at: now,
            expires_at: now.plus(EMAIL_CODE_TTL),
            attempts: 0,
            used_at: None,
        };
        store.insert_email_challenge(&challenge).await?;
        let link = link_url(self.public_issuer(), &link_token);
        let message = EmailMessage {
            to: email.clone(),
            subject: format!("Your sign-in code: {}", spaced(&code)),
            text: format!(
                "Your code to sign in to {for_name} is\n\n    {}\n\n\
                 Or open this link in the browser you asked for the code in:\n\n{link}\n\n\
                 The code and the link work once, for 10 minutes.\n\
                 If you did not ask to sign in, ignore this message: nobody can sign in without the code.\n",
                spaced(&code)
            ),
        };
        self.audit(
            AuditEvent::new(EventType::EmailCodeSent, now)
                .detail("email", email.as_str())
                .detail("challenge", id.as_str()),
        );
        Ok(StartedEmailSignIn {
            challenge,
            message,
            browser_cookie: format!("{id}.{browser_secret}"),
        })
    }

    /// The browser with cookie `browser_cookie` proves it received the message. Uses the
    /// challenge and finds (or creates) the person; the caller starts their session.
    pub async fn finish_email_sign_in(
        &self,
        browser_cookie: Option<&str>,
        proof: EmailProof<'_>,
    ) -> Result<FinishedEmailSignIn, EmailCodeError> {
        let Some((id, browser_secret)) = browser_cookie.and_then(|c| c.split_once('.')) else {
            return Err(EmailCodeError::NoChallenge);
        };
        let Ok(id) = EmailChallengeId::parse(id) else {
            return Err(EmailCodeError::NoChallenge);
        };
        let store = self.store();
        let Some(c) = store.email_challenge(&id).await? else {
            return Err(EmailCodeError::NoChallenge);
        };
        if !c.browser_hash.matches(browser_secret) {
            return Err(EmailCodeError::NoChallenge);
        }
        if c.used_at.is_some() {
            return Err(EmailCodeError::AlreadyUsed);
        }
        if c.expires_at <= self.now() {
            return Err(EmailCodeError::Expired);
        }
        let right = match proof {
            EmailProof::Code(typed) => {
                // Each guess is counted before it is compared, so concurrent guesses cannot
                // exceed the limit.
                let attempts = store.count_email_attempt(&id).await?;
                if attempts > MAX_CODE_ATTEMPTS {
                    return Err(EmailCodeError::TooManyAttempts);
                }
                let digits: String = typed
                    .chars()
                    .filter(|c| !c.is_whitespace() && *c != '-')
                    .collect();
                if c.code_hash.matches(&format!("{browser_secret}.{digits}")) {
                    true
                } else {
                    let left = MAX_CODE_ATTEMPTS - attempts;
                    return Err(if left == 0 {
                        EmailCodeError::TooManyAttempts
                    } else {
                        EmailCodeError::WrongCode(left)
                    });
                }
            }
            EmailProof::Link(token) => {
                challenge_in(token).as_ref() == Some(&id) && c.link_hash.matches(token)
            }
        };
        if !right {
            return Err(EmailCodeError::WrongLink);
        }
        // Single use: of two concurrent uses, one wins.
        if !store.use_email_challenge(&id, self.now()).await? {
            return Err(EmailCodeError::AlreadyUsed);
        }
        let (user, created) = self.person_for_email(&c.email).await?;
        Ok(FinishedEmailSignIn {
            user,
            created,
            return_to: c.return_to,
            server: c.server,
        })
    }

    /// The person with `email`, created (without a password) if there is none; and whether
    /// they were.
    async fn person_for_email(&self, email: &str) -> Result<(User, bool), EmailCodeError> {
        let store = self.store();
        // Two attempts: a concurrent first sign-in of the same address may create it first.
        for _ in 0..2 {
            if let Some(user) = store.user_by_email(email).await? {
                return match user.disabled_at {
                    Some(_) => Err(EmailCodeError::AccountDisabled(user.id)),
                    None => Ok((user, false)),
                };
            }
            let user = User {
                id: UserId::generate(),
                email: email.to_owned(),
                password_hash: String::new(),
                admin: false,
                created_at: self.now(),
                disabled_at: None,
            };
            match store.insert_user(&user).await {
                Ok(()) => return Ok((user, true)),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Backend("could not create the account".into()).into())
    }

    /// Records an email sign-in that succeeded.
    pub fn audit_email_sign_in(&self, done: &FinishedEmailSignIn) {
        self.audit(
            AuditEvent::new(EventType::SignInSucceeded, self.now())
                .user(&done.user.id)
                .detail("method", Method::EmailCode.as_str())
                .detail("account_created", done.created),
        );
    }

    /// Records an email sign-in that failed.
    pub fn audit_email_failure(&self, e: &EmailCodeError) {
        let mut event = AuditEvent::new(EventType::SignInFailed, self.now())
            .detail("method", Method::EmailCode.as_str())
            .detail("reason", e.code());
        if let EmailCodeError::AccountDisabled(u) = e {
            event = event.user(u);
        }
        self.audit(event);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::FixedClock;
    use crate::store::MemoryStore;

    const T0: i64 = 1_800_000_000;

    async fn engine() -> (Engine, Arc<FixedClock>) {
        let clock = Arc::new(FixedClock::new(T0));
        let engine = Engine::start(
            Issuer::parse("https://auth.example").unwrap(),
            Arc::new(MemoryStore::new()),
            clock.clone(),
        )
        .await
        .unwrap();
        (engine, clock)
    }

    /// The code in a message.
    fn code_of(m: &EmailMessage) -> String {
        m.subject.rsplit(": ").next().unwrap().replace(' ', "")
    }

    fn token_of(m: &EmailMessage) -> String {
        let link = m.text.lines().find(|l| l.starts_with("https://")).unwrap();
        let u = url::Url::parse(link).unwrap();
        u.query_pairs()
            .find(|(k, _)| k == "token")
            .unwrap()
            .1
            .into()
    }

    #[tokio::test]
    async fn a_code_signs_in_once_and_creates_one_person() {
        let (e, _) = engine().await;
        let s = e
            .start_email_sign_in(" Ada@Example.com ", "/oauth/authorize?x=1", None, "Todo")
            .await
            .unwrap();
        assert_eq!(s.message.to, "ada@example.com");
        assert!(s.message.text.contains("sign in to Todo"));
        let code = code_of(&s.message);
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        // The code is stored only salted and hashed.
        assert_ne!(s.challenge.code_hash, SecretHash::of(&code));
        let spaced = format!("{}-{}", &code[..4], &code[4..]);
        let done = e
            .finish_email_sign_in(Some(&s.browser_cookie), EmailProof::Code(&spaced))
            .await
            .unwrap();
        assert_eq!(done.user.email, "ada@example.com");
        assert_eq!(done.return_to, "/oauth/authorize?x=1");
        assert!(!done.user.has_password());
        let again = e
            .finish_email_sign_in(Some(&s.browser_cookie), EmailProof::Code(&code))
            .await
            .unwrap_err();
        assert!(matches!(again, EmailCodeError::AlreadyUsed), "{again:?}");
        // The next code finds the same person.
        let s2 = e
            .start_email_sign_in("ada@example.com", "", None, "x")
            .await
            .unwrap();
        let token = token_of(&s2.message);
        let second = e
            .finish_email_sign_in(Some(&s2.browser_cookie), EmailProof::Link(&token))
            .await
            .unwrap();
        assert_eq!(second.user.id, done.user.id);
        assert_eq!(e.store().users().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_code_lives_ten_minutes_and_only_in_its_browser() {
        let (e, clock) = engine().await;
        let s = e
            .start_email_sign_in("ada@example.com", "", None, "x")
            .await
            .unwrap();
        let code = code_of(&s.message);
        let other = e
            .start_email_sign_in("bob@example.com", "", None, "x")
            .await
            .unwrap();
        // A cookie naming no code, or none.
        for cookie in [Some("ec_x.y"), Some("garbage"), None] {
            let err = e
                .finish_email_sign_in(cookie, EmailProof::Code(&code))
                .await
                .unwrap_err();
            assert!(matches!(err, EmailCodeError::NoChallenge), "{err:?}");
        }
        // This code's id with another browser's secret.
        let (_, secret) = other.browser_cookie.split_once('.').unwrap();
        let forged = format!("{}.{secret}", s.challenge.id);
        assert!(matches!(
            e.finish_email_sign_in(Some(&forged), EmailProof::Code(&code))
                .await,
            Err(EmailCodeError::NoChallenge)
        ));
        // Another challenge's link does not work here.
        assert!(matches!(
            e.finish_email_sign_in(
                Some(&s.browser_cookie),
                EmailProof::Link(&token_of(&other.message))
            )
            .await,
            Err(EmailCodeError::WrongLink)
        ));
        clock.advance(EMAIL_CODE_TTL);
        let late = e
            .finish_email_sign_in(Some(&s.browser_cookie), EmailProof::Code(&code))
            .await
            .unwrap_err();
        assert!(matches!(late, EmailCodeError::Expired), "{late:?}");
        assert!(late.to_string().contains("10 minutes"));
    }

    #[tokio::test]
    async fn five_wrong_guesses_kill_a_code() {
        let (e, _) = engine().await;
        let s = e
            .start_email_sign_in("ada@example.com", "", None, "x")
            .await
            .unwrap();
        let code = code_of(&s.message);
        let wrong = if code == "00000000" {
            "11111111"
        } else {
            "00000000"
        };
        for left in (1..MAX_CODE_ATTEMPTS).rev() {
            let err = e
                .finish_email_sign_in(Some(&s.browser_cookie), EmailProof::Code(wrong))
                .await
                .unwrap_err();
            assert!(
                matches!(err, EmailCodeError::WrongCode(n) if n == left),
                "{err:?}"
            );
        }
        let err = e
            .finish_email_sign_in(Some(&s.browser_cookie), EmailProof::Code(wrong))
            .await
            .unwrap_err();
        assert!(matches!(err, EmailCodeError::TooManyAttempts), "{err:?}");
        // Even the right code is refused now.
        let err = e
            .finish_email_sign_in(Some(&s.browser_cookie), EmailProof::Code(&code))
            .await
            .unwrap_err();
        assert!(matches!(err, EmailCodeError::TooManyAttempts), "{err:?}");
    }

    #[tokio::test]
    async fn an_address_gets_five_codes_per_fifteen_minutes() {
        let (e, clock) = engine().await;
        for _ in 0..CODES_PER_WINDOW {
            e.start_email_sign_in("ada@example.com", "", None, "x")
                .await
                .unwrap();
            clock.advance(60);
        }
        let err = e
            .start_email_sign_in("ADA@example.com", "", None, "x")
            .await
            .unwrap_err();
        // The first was sent 5 minutes ago: 10 minutes to wait.
        assert!(matches!(err, EmailCodeError::TooManyCodes(10)), "{err:?}");
        // Other addresses are not affected.
        e.start_email_sign_in("bob@example.com", "", None, "x")
            .await
            .unwrap();
        clock.advance(CODE_WINDOW - 5 * 60);
        e.start_email_sign_in("ada@example.com", "", None, "x")
            .await
            .unwrap();
        assert!(matches!(
            e.start_email_sign_in("not an address", "", None, "x").await,
            Err(EmailCodeError::InvalidEmail(_))
        ));
    }

    #[tokio::test]
    async fn a_disabled_account_is_refused_after_the_code() {
        let (e, _) = engine().await;
        let s = e
            .start_email_sign_in("ada@example.com", "", None, "x")
            .await
            .unwrap();
        let first = e
            .finish_email_sign_in(
                Some(&s.browser_cookie),
                EmailProof::Code(&code_of(&s.message)),
            )
            .await
            .unwrap();
        e.store()
            .set_user_disabled(&first.user.id, Some(e.now()))
            .await
            .unwrap();
        let s = e
            .start_email_sign_in("ada@example.com", "", None, "x")
            .await
            .unwrap();
        let err = e
            .finish_email_sign_in(
                Some(&s.browser_cookie),
                EmailProof::Code(&code_of(&s.message)),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, EmailCodeError::AccountDisabled(_)), "{err:?}");
    }
}
