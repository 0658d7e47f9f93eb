//! Bulk changes on the desk, without JavaScript: the queue's form (tips ticked, or all that
//! match the current filter) leads to a page that states the action and lists the tips
//! (`POST /tips/bulk`, which changes nothing); confirming there (`POST /tips/bulk/confirm`)
//! applies it to exactly the tips listed — not to tips that arrived meanwhile — and goes back
//! to the queue, which says what was done.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::queue::{Filters, QueueRow};
use crate::auth::signin::Analyst;
use crate::ids::valid_id;
use crate::store::{BulkAction, MAX_BULK, StoreError};
use crate::web::analyst::AnalystState;
use crate::web::analyst::actions;
use crate::web::analyst::error::DeskError;
use crate::web::analyst::extract::{CsrfForm, DeskForm};
use crate::web::shared::pages::render;

/// `n tips` (or `1 tip`).
fn tips(n: usize) -> String {
    if n == 1 {
        "1 tip".to_owned()
    } else {
        format!("{n} tips")
    }
}

/// What `action` did, after a count of tips: "marked as spam".
fn done_to(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Spam => "marked as spam",
        BulkAction::Close => "closed",
        BulkAction::Delete => "deleted",
    }
}

/// The bulk actions the queue offers `analyst`: (form value, label).
pub fn action_choices(analyst: &Analyst) -> Vec<(&'static str, &'static str)> {
    BulkAction::ALL
        .into_iter()
        .filter(|&action| actions::may_bulk(analyst, action).is_ok())
        .map(|action| {
            let label = match action {
                BulkAction::Spam => "Mark as spam",
                BulkAction::Close => "Close",
                BulkAction::Delete => "Delete (cannot be undone)",
            };
            (action.as_str(), label)
        })
        .collect()
}

/// The bulk form, from the queue or the confirmation page. Read as pairs: a `tip` field
/// comes once for each tip, which serde's derived forms do not take.
#[derive(Deserialize)]
#[serde(try_from = "Vec<(String, String)>")]
pub struct BulkForm {
    csrf: String,
    action: String,
    /// The tips ticked (or listed on the confirmation page).
    tips: Vec<String>,
    /// Every tip that matches `filters`, rather than `tips`.
    all_matching: bool,
    /// The queue's filters, to select by and to go back to.
    filters: Filters,
}

impl TryFrom<Vec<(String, String)>> for BulkForm {
    type Error = &'static str;

    fn try_from(fields: Vec<(String, String)>) -> Result<Self, Self::Error> {
        let (mut csrf, mut action) = (None, None);
        let mut form = BulkForm {
            csrf: String::new(),
            action: String::new(),
            tips: Vec::new(),
            all_matching: false,
            filters: Filters::default(),
        };
        for (name, value) in fields {
            match name.as_str() {
                "csrf" => csrf = Some(value),
                "action" => action = Some(value),
                "tip" => form.tips.push(value),
                "all_matching" => form.all_matching = true,
                other => {
                    form.filters.read(other, &value);
                }
            }
        }
        form.csrf = csrf.ok_or("missing field `csrf`")?;
        form.action = action.ok_or("missing field `action`")?;
        Ok(form)
    }
}

impl CsrfForm for BulkForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl BulkForm {
    /// The action asked for, if this analyst may take it.
    fn action(&self, analyst: &Analyst) -> Result<BulkAction, DeskError> {
        let action = BulkAction::parse(&self.action)
            .ok_or_else(|| DeskError::new(StatusCode::BAD_REQUEST, "no such bulk action"))?;
        actions::may_bulk(analyst, action)?;
        Ok(action)
    }
}

#[derive(Template)]
#[template(path = "analyst/bulk.html")]
struct ConfirmPage {
    signed_in: Option<String>,
    csrf: String,
    /// "Mark 12 tips as spam?"
    heading: String,
    /// The confirming button's text.
    confirm: String,
    action: &'static str,
    deleting: bool,
    /// More tips match the filter than one bulk change takes.
    more_match: bool,
    max: usize,
    filter_fields: Vec<(&'static str, String)>,
    back_href: String,
    tips: Vec<QueueRow>,
}

/// `POST /tips/bulk`: the confirmation page for the selection, which changes nothing.
pub async fn review(
    State(app): State<AnalystState>,
    DeskForm { session, form }: DeskForm<BulkForm>,
) -> Result<Response, DeskError> {
    let action = form.action(&session.analyst)?;
    let store = &app.intake.store;
    let failed = |error: StoreError| DeskError::internal("could not list tips", error);
    let (selected, more_match) = if form.all_matching {
        let limit = MAX_BULK as i64 + 1;
        let mut selected = store
            .list_tips(&form.filters.for_store(None, limit))
            .await
            .map_err(failed)?;
        let more_match = selected.len() > MAX_BULK;
        selected.truncate(MAX_BULK);
        (selected, more_match)
    } else {
        if form.tips.len() > MAX_BULK || !form.tips.iter().all(|id| valid_id(id)) {
            return Err(DeskError::new(
                StatusCode::BAD_REQUEST,
                "not a selection of tips",
            ));
        }
        (store.tips_by_id(&form.tips).await.map_err(failed)?, false)
    };
    if selected.is_empty() {
        return Err(DeskError::new(
            StatusCode::BAD_REQUEST,
            "No tip selected: tick some, or select all that match the filter.",
        ));
    }
    let count = tips(selected.len());
    let (heading, confirm) = match action {
        BulkAction::Spam => (
            format!("Mark {count} as spam?"),
            format!("Mark {count} as spam"),
        ),
        BulkAction::Close => (format!("Close {count}?"), format!("Close {count}")),
        BulkAction::Delete => (format!("Delete {count}?"), format!("Delete {count}")),
    };
    Ok(render(
        StatusCode::OK,
        &ConfirmPage {
            signed_in: Some(session.analyst.username.clone()),
            csrf: session.csrf(&app.auth).to_string(),
            heading,
            confirm,
            action: action.as_str(),
            deleting: action == BulkAction::Delete,
            more_match,
            max: MAX_BULK,
            filter_fields: form.filters.fields(),
            back_href: form.filters.queue_href(&[]),
            tips: selected.iter().map(QueueRow::from).collect(),
        },
    ))
}

/// `POST /tips/bulk/confirm`: applies the action to the tips the confirmation page listed;
/// back to the queue, with the same filters, saying what was done.
pub async fn confirm(
    State(app): State<AnalystState>,
    DeskForm { session, form }: DeskForm<BulkForm>,
) -> Result<Response, DeskError> {
    let action = form.action(&session.analyst)?;
    let outcome = actions::bulk(&app, &session.analyst, action, &form.tips).await?;
    let done = [
        ("done", action.as_str().to_owned()),
        ("changed", outcome.changed.len().to_string()),
        ("unchanged", outcome.unchanged.len().to_string()),
        ("missing", outcome.missing.len().to_string()),
    ];
    Ok(Redirect::to(&form.filters.queue_href(&done)).into_response())
}

/// What the bulk change that sent the analyst back to the queue did, as its link says.
#[derive(Debug, Default, Deserialize)]
pub struct BulkDone {
    done: Option<String>,
    changed: Option<String>,
    unchanged: Option<String>,
    missing: Option<String>,
}

impl BulkDone {
    /// The sentence the queue shows, if a bulk change sent the analyst there.
    pub fn notice(&self) -> Option<String> {
        let action = BulkAction::parse(self.done.as_deref()?)?;
        let count = |n: &Option<String>| n.as_deref().and_then(|n| n.parse::<usize>().ok());
        let mut notice = format!(
            "{} {}.",
            tips(count(&self.changed).unwrap_or(0)),
            done_to(action)
        );
        if let Some(n) = count(&self.unchanged).filter(|&n| n > 0) {
            let were = if n == 1 { "was" } else { "were" };
            notice.push_str(&format!(" {} already {were}.", tips(n)));
        }
        if let Some(n) = count(&self.missing).filter(|&n| n > 0) {
            notice.push_str(&format!(" {} no longer existed.", tips(n)));
        }
        Some(notice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_says_what_was_done() {
        let done = |action: &str, changed: &str, unchanged: &str, missing: &str| BulkDone {
            done: Some(action.into()),
            changed: Some(changed.into()),
            unchanged: Some(unchanged.into()),
            missing: Some(missing.into()),
        };
        assert_eq!(
            done("spam", "12", "0", "0").notice().as_deref(),
            Some("12 tips marked as spam.")
        );
        assert_eq!(
            done("close", "1", "2", "1").notice().as_deref(),
            Some("1 tip closed. 2 tips already were. 1 tip no longer existed.")
        );
        assert_eq!(
            done("delete", "3", "0", "0").notice().as_deref(),
            Some("3 tips deleted.")
        );
        assert_eq!(done("burn", "3", "0", "0").notice(), None);
        assert_eq!(BulkDone::default().notice(), None);
    }

    #[test]
    fn the_form_takes_a_tip_field_for_each_tip() {
        let read = |body: &str| {
            BulkForm::try_from(
                form_urlencoded::parse(body.as_bytes())
                    .into_owned()
                    .collect::<Vec<_>>(),
            )
        };
        let form = read("csrf=t&action=spam&tip=a&tip=b&status=new&label=&all_matching=1").unwrap();
        assert_eq!(form.tips, ["a", "b"]);
        assert_eq!((form.csrf.as_str(), form.action.as_str()), ("t", "spam"));
        assert!(form.all_matching);
        assert_eq!(form.filters.fields(), [("status", "new".to_owned())]);
        assert!(read("action=spam&tip=a").is_err());
    }
}
