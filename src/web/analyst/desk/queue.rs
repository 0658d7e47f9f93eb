//! `GET /queue`: tips newest first, with filters and pages of `PAGE_SIZE`, a box to tick on
//! each for a bulk change (`bulk.rs`), and what the last bulk change did.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::bulk::{BulkDone, action_choices};
use super::keys::{KeySetChange, change_for};
use super::{assignable, status_choices, status_name, time};
use crate::store::{QueueFilter, STATUSES, TipSummary};
use crate::web::analyst::AnalystState;
use crate::web::analyst::api::tips::parse_cursor;
use crate::web::analyst::error::DeskError;
use crate::web::analyst::extract::DeskSession;
use crate::web::shared::pages::render;

const PAGE_SIZE: i64 = 50;

/// A tip as the queue (and the bulk confirmation) lists it.
pub struct QueueRow {
    pub id: String,
    pub short_id: String,
    pub received: String,
    pub status: String,
    pub labels: String,
    pub assignee: String,
    pub items: usize,
    /// When the source last added something, if it has.
    pub source_activity: String,
}

impl From<&TipSummary> for QueueRow {
    fn from(t: &TipSummary) -> Self {
        Self {
            id: t.id.clone(),
            short_id: t.id[..8].to_owned(),
            source_activity: t.source_activity_at().map(time).unwrap_or_default(),
            received: time(t.received_at),
            status: status_name(&t.status).to_owned(),
            labels: t.labels.join(", "),
            assignee: t.assignee.clone().unwrap_or_default(),
            items: t.items.len(),
        }
    }
}

/// The assignee filter's value for "assigned to nobody" (no user name starts with `-`).
pub const NOBODY: &str = "-";

/// The queue's filters, as its page and forms carry them: a blank field is no filter, and so
/// is an unknown status.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub status: Option<String>,
    /// Matched regardless of case.
    pub label: Option<String>,
    /// A user name, or `NOBODY`.
    pub assignee: Option<String>,
    pub followed_up: bool,
}

impl Filters {
    /// Reads one field of the filters (`status`, `label`, `assignee`, `followed_up`); false if
    /// `name` is none of them.
    pub fn read(&mut self, name: &str, value: &str) -> bool {
        let value = Some(value.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        match name {
            "status" => self.status = value.filter(|s| STATUSES.contains(&s.as_str())),
            "label" => self.label = value,
            "assignee" => self.assignee = value,
            "followed_up" => self.followed_up = value.is_some(),
            _ => return false,
        }
        true
    }

    /// The store's filter: `limit` tips, older than `before` if given.
    pub fn for_store(&self, before: Option<(i64, String)>, limit: i64) -> QueueFilter {
        QueueFilter {
            status: self.status.clone(),
            label: self.label.clone(),
            // The store's "unassigned" is the empty name.
            assignee: self
                .assignee
                .as_deref()
                .map(|a| if a == NOBODY { "" } else { a }.to_owned()),
            unpulled_by: None,
            followed_up: self.followed_up,
            before,
            limit,
        }
    }

    /// The fields that are set, as a form or a link sends them.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = Vec::new();
        for (name, value) in [
            ("status", &self.status),
            ("label", &self.label),
            ("assignee", &self.assignee),
        ] {
            if let Some(value) = value {
                fields.push((name, value.clone()));
            }
        }
        if self.followed_up {
            fields.push(("followed_up", "1".to_owned()));
        }
        fields
    }

    /// A link to the queue with these filters and `more` query fields.
    pub fn queue_href(&self, more: &[(&str, String)]) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.fields())
            .extend_pairs(more)
            .finish();
        if query.is_empty() {
            "/queue".to_owned()
        } else {
            format!("/queue?{query}")
        }
    }
}

#[derive(Template)]
#[template(path = "analyst/queue.html")]
struct QueuePage {
    signed_in: Option<String>,
    csrf: String,
    /// (value, name) of every status.
    statuses: Vec<(&'static str, &'static str)>,
    /// The active analysts, to filter by.
    assignees: Vec<String>,
    nobody: &'static str,
    filter_status: String,
    filter_label: String,
    filter_assignee: String,
    filter_followed_up: bool,
    /// The filters again, for the bulk form ("all matching the current filter").
    filter_fields: Vec<(&'static str, String)>,
    tips: Vec<QueueRow>,
    next_href: Option<String>,
    /// The reviewer keys changed since this analyst last acknowledged them.
    key_change: Option<KeySetChange>,
    /// The bulk actions this analyst may take: (value, label).
    bulk_actions: Vec<(&'static str, &'static str)>,
    /// What the bulk change that sent the analyst here did.
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
    label: Option<String>,
    assignee: Option<String>,
    followed_up: Option<String>,
    before: Option<String>,
    #[serde(flatten)]
    done: BulkDone,
}

pub async fn queue(
    State(app): State<AnalystState>,
    session: DeskSession,
    Query(q): Query<QueueQuery>,
) -> Result<Response, DeskError> {
    let mut filters = Filters::default();
    for (name, value) in [
        ("status", &q.status),
        ("label", &q.label),
        ("assignee", &q.assignee),
        ("followed_up", &q.followed_up),
    ] {
        filters.read(name, value.as_deref().unwrap_or_default());
    }
    let before = q.before.as_deref().and_then(parse_cursor);
    let tips = app
        .intake
        .store
        .list_tips(&filters.for_store(before, PAGE_SIZE))
        .await
        .map_err(|error| DeskError::internal("could not list tips", error))?;
    let key_change = change_for(&app, &session.analyst)
        .await
        .map_err(|error| DeskError::internal("could not read the keyring", error))?;
    let mut assignees = assignable(&app)
        .await
        .map_err(|error| DeskError::internal("could not list the analysts", error))?;
    if let Some(name) = filters.assignee.as_ref().filter(|a| *a != NOBODY)
        && !assignees.contains(name)
    {
        assignees.push(name.clone());
    }
    let next_href = (tips.len() as i64 == PAGE_SIZE).then(|| {
        let last = tips.last().expect("a full page");
        filters.queue_href(&[("before", format!("{}.{}", last.received_at, last.id))])
    });
    Ok(render(
        StatusCode::OK,
        &QueuePage {
            signed_in: Some(session.analyst.username.clone()),
            csrf: session.csrf(&app.auth).to_string(),
            statuses: status_choices(),
            assignees,
            nobody: NOBODY,
            filter_fields: filters.fields(),
            filter_status: filters.status.unwrap_or_default(),
            filter_label: filters.label.unwrap_or_default(),
            filter_assignee: filters.assignee.unwrap_or_default(),
            filter_followed_up: filters.followed_up,
            tips: tips.iter().map(QueueRow::from).collect(),
            next_href,
            key_change,
            bulk_actions: action_choices(&session.analyst),
            done: q.done.notice(),
        },
    ))
}
