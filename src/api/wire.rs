//! The bytes on the wire: each answer type, filled from the server's own values, against the
//! JSON the server built before these types existed (its `serde_json::json!` calls, copied
//! here, or its own serializers where it still has them). When the server switches to the
//! types, these keep its answers byte for byte as they were.

use serde_json::json;

use super::*;
use crate::keyring::{Recipient, ReviewerKey, policy_warnings};
use crate::store;

/// The server's `rfc3339` (src/web/analyst.rs).
fn rfc3339(time: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(time.max(0) as u64),
    )
    .to_string()
}

fn same_bytes(ours: &impl serde::Serialize, server: &serde_json::Value) {
    assert_eq!(
        serde_json::to_string(ours).unwrap(),
        serde_json::to_string(server).unwrap()
    );
}

fn id(n: u8) -> String {
    format!("{n:02x}").repeat(16)
}

fn tip(assignee: Option<&str>, key_set: Option<i64>) -> store::TipSummary {
    // Items received before commitments have none; a re-keyed one says by whom and when.
    let item = |n, kind: &str, added_at| store::ItemSummary {
        id: id(n),
        kind: kind.to_owned(),
        size: 1234,
        key_set: 7,
        added_at,
        commitment: (n != 2).then(|| vec![n; 32]),
        replaced: (n == 4).then(|| store::Replacement {
            at: 1_714_800_000,
            by: "ana".to_owned(),
        }),
    };
    store::TipSummary {
        id: id(1),
        received_at: 1_714_557_600,
        status: "in_review".to_owned(),
        labels: vec!["urgent".to_owned(), "港口".to_owned()],
        assignee: assignee.map(str::to_owned),
        items: vec![
            item(2, "message", None),
            item(3, "facts", None),
            item(4, "attachment", Some(1_714_600_800)),
            item(5, "note", Some(1_714_700_000)),
        ],
        key_set,
    }
}

/// The server's `tip_json`.
fn tip_json(tip: &store::TipSummary) -> serde_json::Value {
    json!({
        "id": tip.id,
        "received_at": rfc3339(tip.received_at),
        "status": tip.status,
        "labels": tip.labels,
        "assignee": tip.assignee,
        "items": tip.items.iter().map(|i| json!({
            "id": i.id, "kind": i.kind, "size": i.size, "key_set": i.key_set,
            "added_at": i.added_at.map(rfc3339),
            "commitment": i.commitment.as_ref().map(hex::encode),
            "replaced_at": i.replaced.as_ref().map(|r| rfc3339(r.at)),
            "replaced_by": i.replaced.as_ref().map(|r| r.by.clone()),
        })).collect::<Vec<_>>(),
        "key_set": tip.key_set,
        "source_activity_at": tip.source_activity_at().map(rfc3339),
    })
}

/// The server's `replies_json`.
fn replies_json(replies: &[store::ReplyStatus]) -> serde_json::Value {
    replies
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "created_at": rfc3339(r.created_at),
                "read_at": r.read_at.map(rfc3339),
                "deleted_by_source_at": r.deleted_at.map(rfc3339),
            })
        })
        .collect()
}

#[test]
fn tips_and_pages() {
    for tip in [tip(Some("alice"), Some(7)), tip(None, None)] {
        same_bytes(&Tip::from(&tip), &tip_json(&tip));
    }
    let mut first = tip(None, Some(7));
    first.items.truncate(2);
    let tips = [first, tip(Some("bob"), Some(7))];
    for next in [Some(format!("1714557600.{}", id(1))), None] {
        let page = TipPage {
            next: next.clone(),
            tips: tips.iter().map(Tip::from).collect(),
        };
        same_bytes(
            &page,
            &json!({ "tips": tips.iter().map(tip_json).collect::<Vec<_>>(), "next": next }),
        );
    }
}

#[test]
fn one_tip_with_its_replies() {
    let tip = tip(Some("alice"), Some(7));
    let replies = vec![
        store::ReplyStatus {
            id: id(8),
            created_at: 1_714_700_000,
            read_at: Some(1_714_710_000),
            deleted_at: Some(1_714_720_000),
        },
        store::ReplyStatus {
            id: id(9),
            created_at: 1_714_800_000,
            read_at: None,
            deleted_at: None,
        },
    ];
    let mut ours = Tip::from(&tip);
    ours.replies = Some(replies.iter().map(Reply::from).collect());
    let mut server = tip_json(&tip);
    server["replies"] = replies_json(&replies);
    same_bytes(&ours, &server);
    // And with none yet: an empty list, not an absent field.
    ours.replies = Some(Vec::new());
    server["replies"] = replies_json(&[]);
    same_bytes(&ours, &server);
}

#[test]
fn sessions_health_errors_and_writings() {
    let token = zeroize::Zeroizing::new("dG9rZW4".to_owned());
    same_bytes(
        &NewSession {
            expires_at: 1_714_600_000,
            token: token.clone(),
        },
        &json!({ "token": token.as_str(), "expires_at": 1_714_600_000 }),
    );
    for role in [crate::auth::Role::Admin, crate::auth::Role::Analyst] {
        let session = Session {
            expires_at: 1_714_600_000,
            role: role.into(),
            username: "alice".to_owned(),
        };
        same_bytes(
            &session,
            &json!({ "username": "alice", "role": role, "expires_at": 1_714_600_000 }),
        );
    }
    for (state, intake) in [
        (IntakeState::Accepting, "accepting"),
        (
            IntakeState::from(&crate::intake::KeyState::NoKeys),
            "paused: no active reviewer key",
        ),
        (
            IntakeState::from(&crate::intake::KeyState::Unusable("no plugin".into())),
            "paused: reviewer keys unusable on this node",
        ),
    ] {
        for (status, text) in [
            (HealthStatus::Ok, "ok"),
            (HealthStatus::DatabaseUnavailable, "database unavailable"),
        ] {
            same_bytes(
                &Health {
                    intake: state,
                    status,
                },
                &json!({ "status": text, "intake": intake }),
            );
        }
    }
    same_bytes(
        &Error::new("no such tip"),
        &json!({ "error": "no such tip" }),
    );
    for (kind, text) in [(WritingKind::Note, "note"), (WritingKind::Reply, "reply")] {
        same_bytes(
            &WritingCreated { id: id(3), kind },
            &json!({ "id": id(3), "kind": text }),
        );
    }
}

fn reviewer_key(n: u8, owner: Option<&str>, retired: bool, revoked: bool) -> ReviewerKey {
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let recipient = Recipient::parse(&recipient).unwrap();
    ReviewerKey {
        id: i64::from(n),
        label: format!("key {n}"),
        owner: owner.map(str::to_owned),
        fingerprint: recipient.fingerprint(),
        recipient,
        active: !retired && !revoked,
        added_at: 1_700_000_000,
        retired_at: retired.then_some(1_700_100_000),
        revoked_at: revoked.then_some(1_700_200_000),
    }
}

fn keys() -> Vec<ReviewerKey> {
    vec![
        reviewer_key(1, Some("Alice"), false, false),
        reviewer_key(2, None, true, false),
        reviewer_key(3, None, true, true),
        reviewer_key(4, None, false, true),
    ]
}

#[test]
fn keys_as_the_keyring_shows_them() {
    for key in keys() {
        same_bytes(&Key::from(&key), &key.to_json());
    }
    let keys = keys();
    let list = KeyList {
        current_key_set: Some(4),
        keyring_version: 9,
        keys: keys.iter().map(Key::from).collect(),
        min_active: 1,
        warnings: policy_warnings(1).iter().map(|w| w.to_string()).collect(),
    };
    same_bytes(
        &list,
        &json!({
            "keyring_version": 9,
            "current_key_set": 4,
            "min_active": 1,
            "keys": keys.iter().map(|k| k.to_json()).collect::<Vec<_>>(),
            "warnings": policy_warnings(1),
        }),
    );
}

#[test]
fn key_changes() {
    for (key_set_id, active_keys) in [(Some(5), 2), (Some(6), 1), (None, 0)] {
        let change = store::KeyChange {
            key: reviewer_key(7, Some("Bo"), false, false),
            keyring: store::KeyringVersion {
                version: 12,
                key_set_id,
            },
            active_keys,
        };
        // The server's `key_change_json`.
        let mut server = json!({
            "key": change.key.to_json(),
            "keyring_version": change.keyring.version,
            "current_key_set": change.keyring.key_set_id,
            "active_keys": change.active_keys,
            "warnings": policy_warnings(change.active_keys),
        });
        let mut ours = KeyChange::from(&change);
        same_bytes(&ours, &server);
        // A revocation adds the tips the key still opens.
        let tips = vec![id(1), id(2)];
        server["tips_still_open"] = tips.clone().into();
        ours.tips_still_open = Some(tips);
        same_bytes(&ours, &server);
    }
}

#[test]
fn keyring_status_as_its_struct_serializes() {
    let status = store::KeyringStatus {
        keyring_version: 4,
        current_key_set: Some(3),
        active_keys: 1,
        key_sets: vec![
            store::KeySetStatus {
                id: 2,
                fingerprint: "ab".repeat(32),
                current: false,
                retired_at: Some(1_700_100_000),
                revoked_at: None,
                keys: vec![1, 2],
                items: 10,
                tips: 3,
            },
            store::KeySetStatus {
                id: 3,
                fingerprint: "cd".repeat(32),
                current: true,
                retired_at: None,
                revoked_at: None,
                keys: vec![1],
                items: 0,
                tips: 0,
            },
        ],
        needs_rekey: store::NeedsRekey {
            retired: store::Exposure { items: 10, tips: 3 },
            revoked: store::Exposure { items: 0, tips: 0 },
        },
        revoked_keys: vec![store::RevokedKeyExposure {
            id: 2,
            label: "old".to_owned(),
            fingerprint: "ef".repeat(32),
            revoked_at: Some(1_700_200_000),
            tips_still_open: vec![id(1)],
        }],
        warnings: policy_warnings(1),
    };
    // The server hands the struct to `Json` directly: its own field order, not json!'s.
    assert_eq!(
        serde_json::to_string(&KeyringStatus::from(&status)).unwrap(),
        serde_json::to_string(&status).unwrap()
    );
}

#[test]
fn rekey_pages_and_answers() {
    use base64::Engine;
    let members = keys()[..2].to_vec();
    let items = [
        store::ItemToRekey {
            id: id(2),
            tip_id: id(1),
            kind: "message".to_owned(),
            size: 400,
            key_set_id: 2,
            mode: store::RekeyMode::Header,
            header: Some(b"age-encryption.org/v1\n".to_vec()),
        },
        store::ItemToRekey {
            id: id(3),
            tip_id: id(1),
            kind: "attachment".to_owned(),
            size: 70_000,
            key_set_id: 1,
            mode: store::RekeyMode::Payload,
            header: None,
        },
    ];
    for key_set in [Some((4, "12".repeat(32), members.clone())), None] {
        let snapshot = store::KeyringSnapshot {
            version: 8,
            key_set,
        };
        let next = Some(id(3));
        let page = RekeyPage {
            items: items.iter().map(RekeyItem::from).collect(),
            key_set: CurrentKeySet::of(&snapshot),
            keyring_version: snapshot.version,
            next: next.clone(),
            remaining: Remaining {
                header: 1,
                payload: 1,
            },
        };
        // The server's `items_to_rekey`.
        let key_set = snapshot.key_set.map(|(id, fingerprint, keys)| {
            json!({
                "id": id,
                "fingerprint": fingerprint,
                "keys": keys.iter().map(|k| json!({
                    "id": k.id,
                    "fingerprint": k.fingerprint,
                    "label": k.label,
                    "kind": k.recipient.kind.as_db(),
                    "recipient": k.recipient.text,
                })).collect::<Vec<_>>(),
            })
        });
        let server = json!({
            "keyring_version": snapshot.version,
            "key_set": key_set,
            "remaining": { "header": 1, "payload": 1 },
            "items": items.iter().map(|i| json!({
                "id": i.id,
                "tip": i.tip_id,
                "kind": i.kind,
                "size": i.size,
                "key_set": i.key_set_id,
                "mode": i.mode,
                "header": i.header.as_ref().map(|h| base64::engine::general_purpose::STANDARD.encode(h)),
            })).collect::<Vec<_>>(),
            "next": next,
        });
        same_bytes(&page, &server);
    }
    for mode in [store::RekeyMode::Header, store::RekeyMode::Payload] {
        let rekeyed = store::Rekeyed {
            from_key_set: 2,
            to_key_set: 4,
            mode,
        };
        // The server's `rekeyed_json`.
        same_bytes(
            &Rekeyed::new(&id(2), &rekeyed),
            &json!({
                "id": id(2),
                "mode": rekeyed.mode,
                "from_key_set": rekeyed.from_key_set,
                "key_set": rekeyed.to_key_set,
            }),
        );
    }
}

#[test]
fn the_audit_trail() {
    let entries: Vec<crate::audit::AuditEntry> = (1..=2)
        .map(|seq| crate::audit::AuditEntry {
            seq,
            at: 1_714_557_600 + seq,
            actor: "alice".to_owned(),
            action: "tip.view".to_owned(),
            subject: id(1),
            detail: "{}".to_owned(),
            prev_hash: "0".repeat(64),
            hash: "a".repeat(64),
        })
        .collect();
    let intact = crate::audit::ChainStatus::Intact {
        entries: 2,
        head: "a".repeat(64),
    };
    let broken = crate::audit::ChainStatus::Broken {
        seq: 2,
        why: "the hash does not match".to_owned(),
    };
    for status in [intact, broken] {
        // The server's `audit_trail`.
        let chain = match &status {
            crate::audit::ChainStatus::Intact { .. } => json!({ "intact": true }),
            crate::audit::ChainStatus::Broken { seq, why } => {
                json!({ "intact": false, "broken_at": seq, "why": why })
            }
        };
        same_bytes(
            &AuditTrail {
                chain: ChainStatus::from(&status),
                entries: entries.iter().map(AuditEntry::from).collect(),
            },
            &json!({ "chain": chain, "entries": entries }),
        );
    }
}

/// Requests: what the review client sent before (json!), and what the server's request types
/// took.
#[test]
fn requests() {
    let sign_in = SignIn {
        password: "pass word".to_owned().into(),
        totp: "123456".to_owned().into(),
        username: "alice".to_owned(),
    };
    same_bytes(
        &sign_in,
        &json!({ "username": "alice", "password": "pass word", "totp": "123456" }),
    );
    let header = HeaderReplacement {
        from_key_set: 2,
        header: "YWdl".to_owned(),
        replaces: "ab".repeat(32),
        to_key_set: 4,
    };
    same_bytes(
        &header,
        &json!({ "from_key_set": 2, "to_key_set": 4, "replaces": "ab".repeat(32), "header": "YWdl" }),
    );
    let read = |text: &str| serde_json::from_str::<Triage>(text);
    assert_eq!(read("{}").unwrap(), Triage::default());
    assert_eq!(read(r#"{"assignee": null}"#).unwrap().assignee, Some(None));
    assert_eq!(
        read(r#"{"assignee": "bo", "status": "closed", "labels": ["x"]}"#).unwrap(),
        Triage {
            assignee: Some(Some("bo".to_owned())),
            labels: Some(vec!["x".to_owned()]),
            status: Some("closed".to_owned()),
        }
    );
    assert_eq!(read(r#"{"status": null}"#).unwrap(), Triage::default());
    assert!(read(r#"{"priority": 1}"#).is_err());
    same_bytes(
        &Triage {
            assignee: Some(None),
            ..Triage::default()
        },
        &json!({ "assignee": null }),
    );
    let key: NewKey = serde_json::from_str(r#"{"recipient": "age1x", "label": "l"}"#).unwrap();
    assert_eq!(key.owner, None);
    assert!(serde_json::from_str::<NewKey>(r#"{"recipient": "a", "label": "l", "x": 1}"#).is_err());
    assert!(serde_json::from_str::<Writing>(r#"{"text": "hi", "more": 1}"#).is_err());
    // Integers only as integers, as the spec says.
    assert!(
        serde_json::from_str::<HeaderReplacement>(
            r#"{"from_key_set": 2.0, "to_key_set": 4, "replaces": "", "header": ""}"#
        )
        .is_err()
    );
}

#[test]
fn times_read_back() {
    for seconds in [0, 1_714_557_600, 4_102_444_800] {
        let text = serde_json::to_string(&Time(seconds)).unwrap();
        assert_eq!(text, format!("\"{}\"", rfc3339(seconds)));
        assert_eq!(serde_json::from_str::<Time>(&text).unwrap(), Time(seconds));
    }
    assert_eq!(
        serde_json::to_string(&Time(-5)).unwrap(),
        "\"1970-01-01T00:00:00Z\""
    );
    assert!(serde_json::from_str::<Time>("\"yesterday\"").is_err());
}
