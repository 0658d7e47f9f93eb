//! `GET /queue`: tips newest first, with filters and pages of `PAGE_SIZE`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::keys::{KeySetChange, change_for};
use super::time;
use crate::store::{QueueFilter, STATUSES};
use crate::web::analyst::AnalystState;
use crate::web::analyst::api::tips::parse_cursor;
use crate::web::analyst::error::DeskError;
use crate::web::analyst::extract::DeskSession;
use crate::web::shared::pages::render;

const PAGE_SIZE: i64 = 50;

struct QueueRow {
    id: String,
    short_id: String,
    received: String,
    status: String,
    labels: String,
    assignee: String,
    items: usize,
    /// When the source last added something, if it has.
    source_activity: String,
}

#[derive(Template)]
#[template(path = "analyst/queue.html")]
struct QueuePage {
    signed_in: Option<String>,
    csrf: String,
    statuses: &'static [&'static str],
    filter_status: String,
    filter_label: String,
    filter_assignee: String,
    filter_followed_up: bool,
    tips: Vec<QueueRow>,
    next_href: Option<String>,
    /// The reviewer keys changed since this analyst last acknowledged them.
    key_change: Option<KeySetChange>,
}

#[derive(Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
    label: Option<String>,
    assignee: Option<String>,
    followed_up: Option<String>,
    before: Option<String>,
}

pub async fn queue(
    State(app): State<AnalystState>,
    session: DeskSession,
    Query(q): Query<QueueQuery>,
) -> Result<Response, DeskError> {
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let status = nonempty(&q.status).filter(|s| STATUSES.contains(&s.as_str()));
    let label = nonempty(&q.label);
    let assignee = nonempty(&q.assignee);
    let filter = QueueFilter {
        status: status.clone(),
        label: label.clone(),
        assignee: assignee.clone(),
        unpulled_by: None,
        followed_up: q.followed_up.is_some(),
        before: q.before.as_deref().and_then(parse_cursor),
        limit: PAGE_SIZE,
    };
    let tips = app
        .intake
        .store
        .list_tips(&filter)
        .await
        .map_err(|error| DeskError::internal("could not list tips", error))?;
    let key_change = change_for(&app, &session.analyst)
        .await
        .map_err(|error| DeskError::internal("could not read the keyring", error))?;
    let next_href = (tips.len() as i64 == PAGE_SIZE).then(|| {
        let last = tips.last().expect("a full page");
        let mut href = format!("/queue?before={}.{}", last.received_at, last.id);
        for (k, v) in [
            ("status", &status),
            ("label", &label),
            ("assignee", &assignee),
        ] {
            if let Some(v) = v {
                href.push_str(&format!(
                    "&{k}={}",
                    form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                ));
            }
        }
        if q.followed_up.is_some() {
            href.push_str("&followed_up=1");
        }
        href
    });
    let rows = tips
        .iter()
        .map(|t| QueueRow {
            id: t.id.clone(),
            short_id: t.id[..8].to_owned(),
            source_activity: t.source_activity_at().map(time).unwrap_or_default(),
            received: time(t.received_at),
            status: t.status.clone(),
            labels: t.labels.join(", "),
            assignee: t.assignee.clone().unwrap_or_default(),
            items: t.items.len(),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &QueuePage {
            signed_in: Some(session.analyst.username.clone()),
            csrf: session.csrf(&app.auth).to_string(),
            statuses: &STATUSES,
            filter_status: status.unwrap_or_default(),
            filter_label: label.unwrap_or_default(),
            filter_assignee: assignee.unwrap_or_default(),
            filter_followed_up: q.followed_up.is_some(),
            tips: rows,
            next_href,
            key_change,
        },
    ))
}
