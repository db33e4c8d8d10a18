//! Sending email: sign-in codes, over SMTP (lettre) or, in development, into an outbox
//! folder, one `.eml` file per message.

use std::path::PathBuf;
use std::time::Duration;

use gatehouse_core::email_code::EmailMessage;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{Config, SmtpTls};

/// How long connecting to and talking with the SMTP server may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Where email goes.
pub struct Mailer {
    from: Mailbox,
    via: Via,
}

enum Via {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// Why a message was not sent. The message names the cause for the log; people are told
/// only that the email could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailError(String);

impl Mailer {
    /// The mailer `config` describes, or `None` when email delivery is not configured.
    pub fn from_config(config: &Config) -> Result<Option<Mailer>, MailError> {
        let from = |default: &str| -> Result<Mailbox, MailError> {
            config
                .email_from
                .as_deref()
                .unwrap_or(default)
                .parse()
                .map_err(|e| MailError(format!("email_from: {e}")))
        };
        if let Some(dir) = &config.email_outbox {
            std::fs::create_dir_all(dir)
                .map_err(|e| MailError(format!("email_outbox {}: {e}", dir.display())))?;
            return Ok(Some(Mailer {
                from: from("Gatehouse <gatehouse@localhost>")?,
                via: Via::Outbox(dir.clone()),
            }));
        }
        let Some(host) = &config.smtp_host else {
            return Ok(None);
        };
        let builder = match config.smtp_tls {
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| MailError(format!("smtp_host {host}: {e}")))?;
        let port = config.smtp_port.unwrap_or(match config.smtp_tls {
            SmtpTls::Tls => 465,
            SmtpTls::Starttls => 587,
            SmtpTls::None => 25,
        });
        let mut builder = builder.port(port).timeout(Some(SMTP_TIMEOUT));
        if let Some(user) = &config.smtp_username {
            let password = config
                .smtp_password
                .as_ref()
                .map(|p| p.0.clone())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Some(Mailer {
            from: from("")?,
            via: Via::Smtp(builder.build()),
        }))
    }

    /// Sends `m`.
    pub async fn send(&self, m: &EmailMessage) -> Result<(), MailError> {
        let to: Mailbox =
            m.to.parse()
                .map_err(|e| MailError(format!("recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&m.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(m.text.clone())
            .map_err(|e| MailError(format!("message: {e}")))?;
        match &self.via {
            Via::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError(format!("SMTP: {e}"))),
            Via::Outbox(dir) => {
                // Written under a temporary name, then renamed: a reader never sees half a
                // message.
                // Names sort by time of writing.
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                let name = format!("{nanos:020}-{}", gatehouse_core::random::id(""));
                let tmp = dir.join(format!(".{name}.tmp"));
                let path = dir.join(format!("{name}.eml"));
                let written = async {
                    tokio::fs::write(&tmp, message.formatted()).await?;
                    tokio::fs::rename(&tmp, &path).await
                };
                written
                    .await
                    .map_err(|e| MailError(format!("outbox {}: {e}", dir.display())))
            }
        }
    }
}

/// Whether `email` is an address mail can be sent to.
pub fn deliverable(email: &str) -> bool {
    email.parse::<Mailbox>().is_ok()
}
