//! Key-set changes on the desk: the queue page says when the reviewer keys every new tip is
//! sealed to changed since the signed-in analyst last acknowledged them, and which keys were
//! added and removed (full fingerprints), until the analyst acknowledges the set they were
//! shown (`POST /keys/acknowledge`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::signin::Analyst;
use crate::keyring::{ReviewerKey, printable};
use crate::store::StoreError;
use crate::web::analyst::AnalystState;
use crate::web::analyst::error::DeskError;
use crate::web::analyst::extract::{CsrfForm, DeskForm};

/// A key as the banner shows it.
pub struct KeyRow {
    pub fingerprint: String,
    pub kind: String,
    /// Without control or invisible formatting characters.
    pub label: String,
}

impl From<&ReviewerKey> for KeyRow {
    fn from(key: &ReviewerKey) -> Self {
        Self {
            fingerprint: key.fingerprint.clone(),
            kind: key.recipient.kind.as_db(),
            label: printable(&key.label),
        }
    }
}

/// What changed since the analyst last acknowledged a key set.
pub struct KeySetChange {
    /// The current key set, which acknowledging records as seen.
    pub key_set: i64,
    /// The set last acknowledged; `None`: never (every current key is then listed as added).
    pub since: Option<i64>,
    pub added: Vec<KeyRow>,
    pub removed: Vec<KeyRow>,
}

/// The change to show `analyst`, or `None` when they have acknowledged the current key set
/// (or no key is active).
pub async fn change_for(
    app: &AnalystState,
    analyst: &Analyst,
) -> Result<Option<KeySetChange>, StoreError> {
    let store = &app.intake.store;
    let snapshot = store.keyring_snapshot().await?;
    let Some((current, _, keys)) = snapshot.key_set else {
        return Ok(None);
    };
    let since = store.seen_key_set(analyst.id).await?;
    if since == Some(current) {
        return Ok(None);
    }
    let before = match since {
        Some(set) => store.key_set(set).await?.1,
        None => Vec::new(),
    };
    let holds = |set: &[ReviewerKey], key: &ReviewerKey| {
        set.iter().any(|k| k.fingerprint == key.fingerprint)
    };
    Ok(Some(KeySetChange {
        key_set: current,
        since,
        added: keys
            .iter()
            .filter(|k| !holds(&before, k))
            .map(KeyRow::from)
            .collect(),
        removed: before
            .iter()
            .filter(|k| !holds(&keys, k))
            .map(KeyRow::from)
            .collect(),
    }))
}

#[derive(Deserialize)]
pub struct AcknowledgeForm {
    csrf: String,
    /// The key set the page showed (not whatever is current by the time the form arrives).
    key_set: i64,
}

impl CsrfForm for AcknowledgeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /keys/acknowledge`: the analyst has seen the key set the queue page showed them.
pub async fn acknowledge(
    State(app): State<AnalystState>,
    DeskForm { session, form }: DeskForm<AcknowledgeForm>,
) -> Result<Response, DeskError> {
    let recorded = app
        .intake
        .store
        .acknowledge_key_set(session.analyst.id, form.key_set)
        .await
        .map_err(|error| DeskError::internal("could not record it", error))?;
    if !recorded {
        return Err(DeskError::new(StatusCode::NOT_FOUND, "no such key set"));
    }
    Ok(Redirect::to("/queue").into_response())
}
