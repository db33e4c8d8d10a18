//! Stores audit events off the request path: handlers hand events to a bounded queue, and one
//! task writes them to the store in batches (one transaction each). A full queue drops events
//! rather than slow requests down; every event is also a log line, so none is lost from the
//! logs. At shutdown the queue is flushed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gatehouse_core::audit::{AuditEvent, AuditSink};
use gatehouse_core::store::Store;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Events waiting to be stored, at most.
const QUEUE: usize = 10_000;
/// Events stored in one transaction, at most.
const BATCH: usize = 500;

enum Message {
    Event(AuditEvent),
    Flush(oneshot::Sender<()>),
}

/// The server's [`AuditSink`].
pub struct AuditWriter {
    tx: mpsc::Sender<Message>,
    dropped: AtomicU64,
    metrics: Arc<Metrics>,
}

impl AuditWriter {
    /// Starts the task that stores events in `store`; each event is counted in `metrics`.
    pub fn spawn(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Arc<AuditWriter> {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(store, rx));
        Arc::new(AuditWriter {
            tx,
            dropped: AtomicU64::new(0),
            metrics,
        })
    }
}

#[async_trait::async_trait]
impl AuditSink for AuditWriter {
    fn record(&self, event: AuditEvent) {
        self.metrics.observe(&event);
        if self.tx.try_send(Message::Event(event)).is_err() {
            self.metrics.audit_dropped();
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "audit queue full: events kept in the log only");
            }
        }
    }

    async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(m) = next {
            match m {
                Message::Event(e) => batch.push(e),
                Message::Flush(done) => waiting.push(done),
            }
            next = if batch.len() < BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            if let Err(e) = store.append_audit(&batch).await {
                tracing::error!(error = %e, events = batch.len(), "could not store audit events; they are in the log");
            }
            batch.clear();
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

/// How audit events are printed or exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    JsonLines,
    /// Comma-separated values with a header row (RFC 4180).
    Csv,
}

impl Format {
    /// Parses `table`, `json`, `jsonl` or `csv`.
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "jsonl" => Ok(Format::JsonLines),
            "csv" => Ok(Format::Csv),
            _ => Err(format!("`{s}` is not one of table, json, jsonl, csv")),
        }
    }
}

/// `at` as an RFC 3339 UTC time.
pub fn rfc3339(at: gatehouse_core::UnixTime) -> String {
    at.rfc3339()
}

/// A time given on the command line or in a query: Unix seconds, an RFC 3339 time, or a
/// span back from `now` such as `15m`, `24h` or `7d`.
pub fn parse_time(
    s: &str,
    now: gatehouse_core::UnixTime,
) -> Result<gatehouse_core::UnixTime, String> {
    use gatehouse_core::UnixTime;
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(UnixTime(secs));
    }
    let unit = match s.chars().last() {
        Some('s') => Some(1),
        Some('m') => Some(60),
        Some('h') => Some(3_600),
        Some('d') => Some(86_400),
        _ => None,
    };
    if let Some(unit) = unit
        && let Ok(n) = s[..s.len() - 1].parse::<i64>()
        && n >= 0
    {
        return Ok(UnixTime(now.0 - n.saturating_mul(unit)));
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| UnixTime(t.unix_timestamp()))
        .map_err(|_| {
            format!("`{s}` is not a time: use Unix seconds, RFC 3339 (2026-11-23T10:00:00Z) or a span back such as 24h or 7d")
        })
}

/// The columns of the table and CSV forms.
const COLUMNS: [&str; 9] = [
    "seq", "time", "event", "outcome", "resource", "client", "user", "actor", "details",
];

fn row(e: &AuditEvent) -> [String; 9] {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    [
        e.seq.map(|s| s.to_string()).unwrap_or_default(),
        rfc3339(e.at),
        e.event.as_str().to_owned(),
        e.outcome.as_str().to_owned(),
        opt(&e.resource),
        opt(&e.client),
        opt(&e.user),
        opt(&e.actor),
        if e.details.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&e.details).unwrap_or_default()
        },
    ]
}

/// Renders `events` in `format`. JSON forms carry `time` (RFC 3339) beside `at`.
pub fn render(events: &[AuditEvent], format: Format) -> String {
    let json = |e: &AuditEvent| {
        let mut v = serde_json::to_value(e).unwrap_or_default();
        v["time"] = rfc3339(e.at).into();
        v
    };
    match format {
        Format::Json => serde_json::to_string_pretty(&events.iter().map(json).collect::<Vec<_>>())
            .unwrap_or_default(),
        Format::JsonLines => events.iter().map(|e| json(e).to_string() + "\n").collect(),
        Format::Csv => {
            let mut out = COLUMNS.join(",") + "\r\n";
            for e in events {
                let cells: Vec<String> = row(e).iter().map(|c| csv_cell(c)).collect();
                out.push_str(&cells.join(","));
                out.push_str("\r\n");
            }
            out
        }
        Format::Table => {
            let mut out = format!(
                "{:<7} {:<20} {:<27} {:<8} {:<26} {:<26} {}\n",
                "SEQ", "TIME", "EVENT", "OUTCOME", "SERVER", "CLIENT", "USER / DETAILS"
            );
            for e in events {
                let [
                    seq,
                    time,
                    event,
                    outcome,
                    resource,
                    client,
                    user,
                    actor,
                    details,
                ] = row(e);
                let who = [user, actor, details]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                out.push_str(&format!(
                    "{seq:<7} {time:<20} {event:<27} {outcome:<8} {resource:<26} {client:<26} {who}\n"
                ));
            }
            out
        }
    }
}

/// RFC 4180: quoted when it holds a comma, quote or line break, quotes doubled. A leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does not run it as a formula.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::UnixTime;
    use gatehouse_core::audit::EventType;

    #[test]
    fn times_parse_in_every_form() {
        let now = UnixTime(1_000_000);
        assert_eq!(parse_time("1700000000", now), Ok(UnixTime(1_700_000_000)));
        assert_eq!(parse_time("24h", now), Ok(UnixTime(1_000_000 - 86_400)));
        assert_eq!(parse_time("7d", now), Ok(UnixTime(1_000_000 - 7 * 86_400)));
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z", now),
            Ok(UnixTime(1_700_000_000))
        );
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("-5d", now).is_err());
        assert_eq!(rfc3339(UnixTime(1_700_000_000)), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let e = AuditEvent::new(EventType::SignInFailed, UnixTime(1_700_000_000))
            .detail("email", "=cmd|' /C calc'!A0, \"x\"");
        let csv = render(&[e], Format::Csv);
        let mut lines = csv.split("\r\n");
        assert_eq!(
            lines.next(),
            Some("seq,time,event,outcome,resource,client,user,actor,details")
        );
        assert_eq!(
            lines.next(),
            Some(
                r#",2023-11-14T22:13:20Z,sign_in.failed,failure,,,,,"{""email"":""=cmd|' /C calc'!A0, \""x\""""}""#
            )
        );
        assert_eq!(csv_cell("-1"), "'-1");
    }
}
