//! What an analyst can do to a tip, the same whether asked from a desk form or the API:
//! triage (status, labels, assignee), bulk changes (mark spam, close or delete many tips at
//! once), write a note or a reply (sealed here, never stored in clear), and every action's audit
//! entry. Each surface turns `ActionError` into its own answer.

use zeroize::Zeroizing;

use super::AnalystState;
use super::error::ActionError;
use crate::audit::{Audit, AuditAction};
use crate::auth::Role;
use crate::auth::signin::Analyst;
use crate::clock::now;
use crate::ids::valid_id;
use crate::intake::IntakeError;
use crate::store::{BulkAction, BulkOutcome, MAX_BULK, STATUSES, TriageUpdate};

/// The most labels on one tip.
const MAX_LABELS: usize = 20;
pub use crate::writings::MAX_WRITING_BYTES;

/// A triage change as asked: `None` leaves a field as it is.
pub struct Triage {
    pub status: Option<String>,
    pub labels: Option<Vec<String>>,
    /// A username, or `Some(None)` to unassign.
    pub assignee: Option<Option<String>>,
}

fn valid_label(label: &str) -> bool {
    (1..=64).contains(&label.chars().count()) && !label.chars().any(char::is_control)
}

/// Checks and applies a triage change to tip `id`, and records it in the audit trail.
pub async fn triage(
    app: &AnalystState,
    analyst: &Analyst,
    id: &str,
    triage: Triage,
) -> Result<(), ActionError> {
    if !valid_id(id) {
        return Err(ActionError::NotFound("no such tip"));
    }
    if triage
        .status
        .as_deref()
        .is_some_and(|s| !STATUSES.contains(&s))
    {
        return Err(ActionError::Invalid(
            "status must be one of new, in_review, verified, closed, spam".into(),
        ));
    }
    if let Some(labels) = &triage.labels
        && (labels.len() > MAX_LABELS || !labels.iter().all(|l| valid_label(l)))
    {
        return Err(ActionError::Invalid(
            "at most 20 labels of 1 to 64 characters".into(),
        ));
    }
    let store = &app.intake.store;
    let assignee_id = match &triage.assignee {
        None => None,
        Some(None) => Some(None),
        Some(Some(name)) => match store.analyst_id(name).await? {
            Some(id) => Some(Some(id)),
            None => return Err(ActionError::Invalid("no such analyst to assign".into())),
        },
    };
    let audit = entry(
        analyst,
        AuditAction::TipUpdate,
        id,
        serde_json::json!({
            "status": triage.status,
            "labels": triage.labels,
            "assignee": triage.assignee,
        }),
    );
    let update = TriageUpdate {
        status: triage.status,
        labels: triage.labels,
        assignee_id,
    };
    if !store.update_tip(id, &update, &audit).await? {
        return Err(ActionError::NotFound("no such tip"));
    }
    Ok(())
}

/// Whether `analyst` may take the bulk action `action`: deleting is for admins.
pub fn may_bulk(analyst: &Analyst, action: BulkAction) -> Result<(), ActionError> {
    if action == BulkAction::Delete && analyst.role != Role::Admin {
        return Err(ActionError::Forbidden("only admins delete tips"));
    }
    Ok(())
}

/// Checks and applies a bulk change to the tips `ids` (1 to `MAX_BULK`), in one transaction with
/// an audit entry per tip changed (`tip.update` with the status, as triage writes it, or
/// `tip.delete`). Deleting is for admins. Ids of no tip are reported in the outcome.
pub async fn bulk(
    app: &AnalystState,
    analyst: &Analyst,
    action: BulkAction,
    ids: &[String],
) -> Result<BulkOutcome, ActionError> {
    may_bulk(analyst, action)?;
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(ActionError::Invalid(
            format!("a bulk change takes 1 to {MAX_BULK} tips").into(),
        ));
    }
    if !ids.iter().all(|id| valid_id(id)) {
        return Err(ActionError::Invalid(
            "a tip id is 32 lower-case hex digits".into(),
        ));
    }
    let (action_entry, detail) = match action.status() {
        Some(status) => (
            AuditAction::TipUpdate,
            serde_json::json!({ "status": status, "bulk": true }),
        ),
        None => (AuditAction::TipDelete, serde_json::json!({ "bulk": true })),
    };
    // The subject of each tip's entry is the tip.
    let audit = entry(analyst, action_entry, "", detail);
    Ok(app.intake.store.bulk_change(ids, action, &audit).await?)
}

/// What an analyst writes on a tip: an internal note, or a reply the source will read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Writing {
    Note,
    Reply,
}

impl Writing {
    pub fn kind(self) -> &'static str {
        match self {
            Writing::Note => "note",
            Writing::Reply => "reply",
        }
    }
}

/// Seals a note (to the reviewer keys) or a reply (to the tip's source and the reviewer keys)
/// onto tip `tip_id`, stored with its audit entry, and returns its id.
pub async fn write(
    app: &AnalystState,
    analyst: &Analyst,
    tip_id: &str,
    what: Writing,
    text: Zeroizing<String>,
) -> Result<String, ActionError> {
    let kind = what.kind();
    if !valid_id(tip_id) {
        return Err(ActionError::NotFound("no such tip"));
    }
    if text.trim().is_empty() || text.len() > MAX_WRITING_BYTES {
        return Err(ActionError::Invalid(
            format!("a {kind} is 1 byte to 32 KiB of text").into(),
        ));
    }
    let sealed = match what {
        Writing::Note => app.intake.add_note(tip_id, &analyst.username, text).await,
        Writing::Reply => app.intake.add_reply(tip_id, &analyst.username, text).await,
    };
    match sealed {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(ActionError::NotFound("no such tip")),
        Err(IntakeError::Paused) => Err(ActionError::Unavailable(format!(
            "no usable reviewer key: the {kind} cannot be sealed"
        ))),
        Err(error) if error.keys_revoked() => Err(ActionError::Unavailable(format!(
            "a reviewer key was revoked while the {kind} was sealed; nothing was stored: send it again"
        ))),
        Err(error) => Err(ActionError::internal(error)),
    }
}

/// Stores a note or reply sealed on the analyst's own machine (`intake::PreSealed`), after the
/// checks of `Intake::add_pre_sealed`, and returns its id.
pub async fn write_sealed(
    app: &AnalystState,
    analyst: &Analyst,
    tip_id: &str,
    sealed: crate::intake::PreSealed,
) -> Result<String, ActionError> {
    if !valid_id(tip_id) {
        return Err(ActionError::NotFound("no such tip"));
    }
    if !valid_id(&sealed.id) {
        return Err(ActionError::Invalid(
            "the id must be 32 lower-case hex digits".into(),
        ));
    }
    let kind = if sealed.for_source.is_some() {
        "reply"
    } else {
        "note"
    };
    match app
        .intake
        .add_pre_sealed(tip_id, &analyst.username, sealed)
        .await
    {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(ActionError::NotFound("no such tip")),
        Err(IntakeError::Refused(why)) => Err(ActionError::Invalid(why.into())),
        Err(IntakeError::Paused) => Err(ActionError::Unavailable(format!(
            "no usable reviewer key: the {kind} cannot be stored"
        ))),
        Err(error) if error.keys_revoked() => Err(ActionError::Unavailable(format!(
            "a reviewer key was revoked meanwhile; nothing was stored: seal the {kind} again"
        ))),
        Err(error) => Err(ActionError::internal(error)),
    }
}

/// Records that an analyst viewed a tip: an event with nothing else to write, so a failure is
/// logged, not shown. (An action that writes takes its entry into its own transaction.)
pub async fn viewed(app: &AnalystState, analyst: &Analyst, tip_id: &str) {
    let audit = Audit {
        at: now(),
        actor: &analyst.username,
        action: AuditAction::TipView,
        subject: tip_id,
        detail: serde_json::json!({}),
    };
    if let Err(error) = app.intake.store.append_audit(&audit).await {
        tracing::error!(%error, "could not write the audit trail");
    }
}

/// The audit entry of `analyst`'s `action` on `subject`, now.
pub fn entry<'a>(
    analyst: &'a Analyst,
    action: AuditAction,
    subject: &'a str,
    detail: serde_json::Value,
) -> Audit<'a> {
    Audit {
        at: now(),
        actor: &analyst.username,
        action,
        subject,
        detail,
    }
}
