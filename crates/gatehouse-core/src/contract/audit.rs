//! Contract checks for the audit log.

use crate::audit::{AuditEvent, AuditQuery, EventType, Outcome};
use crate::clock::UnixTime;
use crate::records::Prune;
use crate::store::Store;

pub(super) async fn run_all<S: Store, F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    events_come_back_newest_first_with_every_field(&make().await).await;
    every_filter_narrows_and_pages_do_not_overlap(&make().await).await;
    prune_removes_events_older_than_the_retention(&make().await).await;
}

fn all(limit: u32) -> AuditQuery {
    AuditQuery {
        limit,
        ..AuditQuery::default()
    }
}

fn sample(i: i64) -> AuditEvent {
    let kind = if i % 3 == 0 {
        EventType::TokenRefused
    } else {
        EventType::TokenIssued
    };
    AuditEvent::new(kind, UnixTime(1_000 + i))
        .resource(if i % 2 == 0 { "res_even" } else { "res_odd" })
        .client(format!("client_{}", i % 4))
        .user(format!("usr_{}", i % 5))
        .detail("n", i)
}

async fn events_come_back_newest_first_with_every_field(store: &impl Store) {
    assert_eq!(store.audit_events(&all(10)).await.unwrap(), vec![]);
    let e = AuditEvent::new(EventType::SignInFailed, UnixTime(42))
        .resource("res_1")
        .client("dcr_1")
        .user("usr_1")
        .actor("cli")
        .detail("reason", "wrong password")
        .detail("nested", serde_json::json!({"a": [1, 2]}));
    let bare = AuditEvent::new(EventType::KeyRotated, UnixTime(43));
    store
        .append_audit(&[e.clone(), bare.clone()])
        .await
        .unwrap();
    store.append_audit(&[]).await.unwrap();
    let got = store.audit_events(&all(10)).await.unwrap();
    assert_eq!(got.len(), 2);
    let (second, first) = (&got[0], &got[1]);
    assert!(first.seq.unwrap() < second.seq.unwrap(), "seq increases");
    assert_eq!(
        AuditEvent {
            seq: None,
            ..first.clone()
        },
        e,
        "every field round-trips"
    );
    assert_eq!(
        AuditEvent {
            seq: None,
            ..second.clone()
        },
        bare
    );
    assert_eq!(first.outcome, Outcome::Failure);
}

async fn every_filter_narrows_and_pages_do_not_overlap(store: &impl Store) {
    let events: Vec<AuditEvent> = (0..30).map(sample).collect();
    store.append_audit(&events).await.unwrap();
    let stored = store.audit_events(&all(1000)).await.unwrap();
    assert_eq!(stored.len(), 30);

    // Each filter gives exactly what `AuditQuery::matches` says it should.
    let queries = [
        AuditQuery {
            events: vec![EventType::TokenRefused],
            ..all(100)
        },
        AuditQuery {
            events: vec![EventType::TokenRefused, EventType::TokenIssued],
            ..all(100)
        },
        AuditQuery {
            outcome: Some(Outcome::Success),
            ..all(100)
        },
        AuditQuery {
            resource: Some("res_odd".into()),
            ..all(100)
        },
        AuditQuery {
            client: Some("client_1".into()),
            ..all(100)
        },
        AuditQuery {
            user: Some("usr_3".into()),
            ..all(100)
        },
        AuditQuery {
            since: Some(UnixTime(1_010)),
            until: Some(UnixTime(1_020)),
            ..all(100)
        },
        AuditQuery {
            resource: Some("res_even".into()),
            outcome: Some(Outcome::Failure),
            ..all(100)
        },
        AuditQuery {
            client: Some("nobody".into()),
            ..all(100)
        },
    ];
    for q in queries {
        let want: Vec<AuditEvent> = stored.iter().filter(|e| q.matches(e)).cloned().collect();
        assert_eq!(store.audit_events(&q).await.unwrap(), want, "{q:?}");
    }

    // Pages of 7 by `before` cover everything once, newest first.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .audit_events(&AuditQuery { before, ..all(7) })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        before = page.last().and_then(|e| e.seq);
        seen.extend(page);
    }
    assert_eq!(seen, stored);
}

async fn prune_removes_events_older_than_the_retention(store: &impl Store) {
    let events: Vec<AuditEvent> = (0..10).map(sample).collect();
    store.append_audit(&events).await.unwrap();
    let last_seq = store.audit_events(&all(1)).await.unwrap()[0].seq.unwrap();
    // Five events are due; a pass deletes at most two, and says whether there may be more.
    let prune = Prune {
        now: UnixTime(2_000),
        sessions_idle_before: UnixTime(0),
        sessions_created_before: UnixTime(0),
        registrations_unused_before: UnixTime(0),
        registrations_never_used_before: UnixTime(0),
        audit_before: UnixTime(1_005),
        limit: 2,
    };
    let mut passes = Vec::new();
    loop {
        let pass = store.prune(&prune).await.unwrap();
        passes.push(pass.deleted);
        if !pass.more {
            break;
        }
        assert!(passes.len() < 10, "passes end: {passes:?}");
    }
    assert_eq!(passes, [2, 2, 1], "bounded passes");
    let left = store.audit_events(&all(100)).await.unwrap();
    assert_eq!(
        left.iter().map(|e| e.at.0).collect::<Vec<_>>(),
        (1_005..1_010).rev().collect::<Vec<_>>()
    );
    // A pruned seq is never given again.
    store.append_audit(&[sample(99)]).await.unwrap();
    assert!(store.audit_events(&all(1)).await.unwrap()[0].seq.unwrap() > last_seq);
}
