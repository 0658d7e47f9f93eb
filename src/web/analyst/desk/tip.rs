//! A tip's desk page and its forms: triage, notes, replies, and downloads of its sealed items.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{assignable, status_choices, status_name, time};
use crate::ids::valid_id;
use crate::web::analyst::AnalystState;
use crate::web::analyst::actions::{self, Triage, Writing, viewed};
use crate::web::analyst::downloads;
use crate::web::analyst::error::DeskError;
use crate::web::analyst::extract::{CsrfForm, DeskForm, DeskSession};
use crate::web::shared::pages::render;

struct ItemRow {
    id: String,
    kind: String,
    size: String,
    key_set: i64,
    /// Who re-keyed it last and when (rounded); empty if never. The server cannot tell whether
    /// a fresh encryption holds what was received: `tipbox review pull` checks that against the
    /// item's commitment.
    replaced: String,
    /// Whether it carries a commitment (items received before commitments do not).
    committed: bool,
}

struct ReplyRow {
    id: String,
    sent: String,
    read: String,
    deleted: String,
}

#[derive(Template)]
#[template(path = "analyst/tip.html")]
struct TipPage {
    signed_in: Option<String>,
    csrf: String,
    /// (value, name) of every status.
    statuses: Vec<(&'static str, &'static str)>,
    id: String,
    short_id: String,
    received: String,
    status: String,
    status_name: &'static str,
    labels: String,
    assignee: String,
    /// Who the tip can be assigned to: every active analyst, and the current assignee if
    /// their account was disabled since ((user name, shown as)).
    assignees: Vec<(String, String)>,
    key_set: String,
    source_activity: String,
    items: Vec<ItemRow>,
    replies: Vec<ReplyRow>,
}

/// `GET /tips/{id}`.
pub async fn tip(
    State(app): State<AnalystState>,
    session: DeskSession,
    Path(id): Path<String>,
) -> Result<Response, DeskError> {
    let not_found = || DeskError::new(StatusCode::NOT_FOUND, "no such tip");
    if !valid_id(&id) {
        return Err(not_found());
    }
    let store = &app.intake.store;
    let tip = store
        .tip(&id)
        .await
        .map_err(|error| DeskError::internal("could not read the tip", error))?
        .ok_or_else(not_found)?;
    let replies = store
        .reply_statuses(&id)
        .await
        .map_err(|error| DeskError::internal("could not read the tip", error))?;
    let mut assignees: Vec<(String, String)> = assignable(&app)
        .await
        .map_err(|error| DeskError::internal("could not list the analysts", error))?
        .into_iter()
        .map(|name| (name.clone(), name))
        .collect();
    if let Some(current) = &tip.assignee
        && !assignees.iter().any(|(name, _)| name == current)
    {
        assignees.push((current.clone(), format!("{current} (disabled)")));
    }
    viewed(&app, &session.analyst, &id).await;
    Ok(render(
        StatusCode::OK,
        &TipPage {
            signed_in: Some(session.analyst.username.clone()),
            csrf: session.csrf(&app.auth).to_string(),
            statuses: status_choices(),
            short_id: tip.id[..8].to_owned(),
            received: time(tip.received_at),
            status: tip.status.clone(),
            status_name: status_name(&tip.status),
            assignees,
            labels: tip.labels.join(", "),
            assignee: tip.assignee.clone().unwrap_or_default(),
            key_set: tip.key_set.map(|k| k.to_string()).unwrap_or_default(),
            source_activity: tip.source_activity_at().map(time).unwrap_or_default(),
            replies: replies
                .into_iter()
                .map(|r| ReplyRow {
                    sent: time(r.created_at),
                    read: r.read_at.map(time).unwrap_or_else(|| "not yet".into()),
                    deleted: r.deleted_at.map(time).unwrap_or_default(),
                    id: r.id,
                })
                .collect(),
            items: tip
                .items
                .iter()
                .map(|i| ItemRow {
                    id: i.id.clone(),
                    kind: i.kind.clone(),
                    size: crate::i18n::Lang::En.size(i.size.max(0) as u64),
                    key_set: i.key_set,
                    replaced: i
                        .replaced
                        .as_ref()
                        .map(|r| format!("by {} at {} (rounded)", r.by, time(r.at)))
                        .unwrap_or_default(),
                    committed: i.commitment.is_some(),
                })
                .collect(),
            id: tip.id,
        },
    ))
}

#[derive(Deserialize)]
pub struct TriageForm {
    csrf: String,
    status: String,
    /// Comma-separated.
    labels: String,
    /// A username, or empty to unassign.
    assignee: String,
    /// The assignee the page showed: if `assignee` is the same, it is left as it is now (a
    /// change made meanwhile by someone else stands, and a disabled assignee stays).
    #[serde(default)]
    assignee_was: Option<String>,
}

impl CsrfForm for TriageForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /tips/{id}/triage`: the whole triage form at once; back to the tip page.
pub async fn triage(
    State(app): State<AnalystState>,
    Path(id): Path<String>,
    DeskForm { session, form }: DeskForm<TriageForm>,
) -> Result<Response, DeskError> {
    let labels = form
        .labels
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let chosen = form.assignee.trim();
    let assignee = (form.assignee_was.as_deref().map(str::trim) != Some(chosen))
        .then(|| Some(chosen).filter(|a| !a.is_empty()).map(str::to_owned));
    let triage = Triage {
        status: Some(form.status),
        labels: Some(labels),
        assignee,
    };
    actions::triage(&app, &session.analyst, &id, triage)
        .await
        .map_err(|error| back_to_tip(error.into(), &id))?;
    Ok(Redirect::to(&format!("/tips/{id}")).into_response())
}

#[derive(Deserialize)]
pub struct WritingForm {
    csrf: String,
    text: Zeroizing<String>,
}

impl CsrfForm for WritingForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A note or a reply from the tip page's forms; back to the tip page when it is sealed.
async fn write_on_tip(
    app: AnalystState,
    id: String,
    what: Writing,
    DeskForm { session, form }: DeskForm<WritingForm>,
) -> Result<Response, DeskError> {
    actions::write(&app, &session.analyst, &id, what, form.text)
        .await
        .map_err(|error| back_to_tip(error.into(), &id))?;
    Ok(Redirect::to(&format!("/tips/{id}")).into_response())
}

/// A refusal of a tip's form, whose page links back to the tip (if `id` can be one).
fn back_to_tip(error: DeskError, id: &str) -> DeskError {
    if valid_id(id) {
        error.back_to(format!("/tips/{id}"), "Back to the tip")
    } else {
        error
    }
}

/// `POST /tips/{id}/notes`.
pub async fn add_note(
    State(app): State<AnalystState>,
    Path(id): Path<String>,
    desk: DeskForm<WritingForm>,
) -> Result<Response, DeskError> {
    write_on_tip(app, id, Writing::Note, desk).await
}

/// `POST /tips/{id}/replies`.
pub async fn add_reply(
    State(app): State<AnalystState>,
    Path(id): Path<String>,
    desk: DeskForm<WritingForm>,
) -> Result<Response, DeskError> {
    write_on_tip(app, id, Writing::Reply, desk).await
}

/// `GET /items/{id}/sealed`: one sealed item.
pub async fn download_item(
    State(app): State<AnalystState>,
    session: DeskSession,
    Path(id): Path<String>,
) -> Result<Response, DeskError> {
    Ok(downloads::sealed_item(&app, &session.analyst, &id).await?)
}

/// `GET /tips/{id}/archive`: every sealed item of a tip, as one tar archive.
pub async fn download_archive(
    State(app): State<AnalystState>,
    session: DeskSession,
    Path(id): Path<String>,
) -> Result<Response, DeskError> {
    Ok(downloads::tip_archive(&app, &session.analyst, &id).await?)
}
