//! The local desk's pages: the code's form, the queue (readable previews, search, filters,
//! sorting, bulk actions), a tip as one conversation (message, facts, files with their
//! metadata, the source's additions, notes and replies in time order) with triage and the
//! forms to reply and to note, and files to save (as sent, or without their metadata).

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::Desk;
use super::guard::session_cookie;
use super::metadata;
use super::tips::{OpenedItem, list};
use crate::api;
use crate::ids::valid_id;
use crate::report::{carries_facts, carries_message};

static STYLESHEET: &str = include_str!("../../../static/style.css");

/// Tips the queue holds at most (each one's message and facts are opened in memory).
const MAX_QUEUE: usize = 2000;
/// Attachments up to this size are opened when their tip is shown, to look for metadata.
const INSPECT_BYTES: i64 = 64 * 1024 * 1024;

fn page(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

#[derive(Template)]
#[template(path = "local/message.html")]
struct MessagePage<'a> {
    title: &'a str,
    text: String,
    back: &'a str,
}

/// A failure, said plainly, with a way back.
fn failed(status: StatusCode, text: impl std::fmt::Display, back: &str) -> Response {
    let mut response = page(&MessagePage {
        title: "Something went wrong",
        text: format!("{text:#}"),
        back,
    });
    *response.status_mut() = status;
    response
}

pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "local/unlock.html")]
struct UnlockPage {
    wrong: bool,
}

/// `GET /`: the code's form; the queue once unlocked in this browser; in another browser,
/// after the code was used, why it cannot be opened there.
pub async fn start(State(desk): State<Arc<Desk>>, headers: axum::http::HeaderMap) -> Response {
    if desk.guard.code().is_some() {
        return page(&UnlockPage { wrong: false });
    }
    if desk.guard.has_session(&headers) {
        return Redirect::to("/queue").into_response();
    }
    failed(
        StatusCode::FORBIDDEN,
        "This desk was opened with its one-time code already, in another browser or window. \
         To use it here, stop it (Ctrl-C) and start `tipbox review desk` again.",
        "/",
    )
}

#[derive(Deserialize)]
pub struct UnlockForm {
    code: Zeroizing<String>,
}

/// `POST /unlock`: the printed code, once, for the session's cookie.
pub async fn unlock(State(desk): State<Arc<Desk>>, Form(form): Form<UnlockForm>) -> Response {
    match desk.guard.unlock(&form.code) {
        Some(token) => {
            let mut response = Redirect::to("/queue").into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&token));
            response
        }
        None => {
            let mut response = page(&UnlockPage { wrong: true });
            *response.status_mut() = StatusCode::FORBIDDEN;
            response
        }
    }
}

/// A tip's status in words.
pub fn status_name(status: &str) -> &'static str {
    match status {
        "new" => "New",
        "in_review" => "In review",
        "verified" => "Verified",
        "closed" => "Closed",
        "spam" => "Spam",
        _ => "Unknown",
    }
}

const STATUSES: [&str; 5] = ["new", "in_review", "verified", "closed", "spam"];

fn date(time: &api::Time) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(time.0.max(0) as u64),
    )
    .to_string()
    .replacen('T', " ", 1)
    .trim_end_matches(":00Z")
    .to_owned()
}

fn size(bytes: i64) -> String {
    let bytes = bytes.max(0) as f64;
    match bytes {
        b if b >= 1024.0 * 1024.0 => format!("{:.1} MB", b / 1024.0 / 1024.0),
        b if b >= 1024.0 => format!("{:.0} KB", b / 1024.0),
        b => format!("{b} bytes"),
    }
}

/// The facts a source gave, in words, from a decrypted facts item.
fn facts_of(facts: &serde_json::Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (field, label) in [
        ("incident_type", "Incident"),
        ("country", "Country"),
        ("city", "City"),
        ("when", "When"),
    ] {
        if let Some(value) = facts.get(field).and_then(|v| v.as_str())
            && !value.is_empty()
        {
            out.push((label, value.replace('_', " ")));
        }
    }
    out
}

struct QueueRow {
    id: String,
    short: String,
    received: String,
    status: &'static str,
    labels: String,
    assignee: String,
    preview: String,
    facts: String,
    files: String,
    added_more: bool,
    unread: bool,
    problem: bool,
}

#[derive(Template)]
#[template(path = "local/queue.html")]
struct QueuePage {
    csrf: String,
    rows: Vec<QueueRow>,
    q: String,
    status: String,
    sort: String,
    done: Option<String>,
    total: usize,
    statuses: Vec<(&'static str, &'static str)>,
    analysts: Vec<String>,
}

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    done: String,
}

/// What a confirmation key says, after an action.
fn confirmation(done: &str) -> Option<String> {
    Some(
        match done {
            "" => return None,
            "reply" => "Your reply was sealed on this machine and sent.",
            "note" => "Your note was sealed on this machine and saved.",
            "triage" => "The tip was updated.",
            "spam" => "The tips were marked as spam.",
            "close" => "The tips were closed.",
            "new" | "in_review" | "verified" => "The tips' status was changed.",
            "label" => "The label was added to the tips.",
            "assign" => "The tips were assigned.",
            "none" => "No tip was ticked: nothing was changed.",
            _ => return None,
        }
        .to_owned(),
    )
}

/// `GET /queue`: every tip with a preview of what it says, opened here; searched, filtered
/// and sorted here.
pub async fn queue(State(desk): State<Arc<Desk>>, Query(query): Query<QueueQuery>) -> Response {
    let tips = match list(&desk.tips.api, "", MAX_QUEUE).await {
        Ok(tips) => tips,
        Err(error) => return failed(StatusCode::BAD_GATEWAY, error, "/queue"),
    };
    let analysts = match desk
        .tips
        .api
        .get_json::<api::AnalystList>("/api/v1/analysts")
        .await
    {
        Ok(list) => list.analysts,
        Err(error) => return failed(StatusCode::BAD_GATEWAY, error, "/queue"),
    };
    let needle = query.q.trim().to_lowercase();
    let mut rows = Vec::new();
    for tip in &tips {
        if !query.status.is_empty() && tip.status != query.status {
            continue;
        }
        let (message, facts, problem) = match preview(&desk, tip).await {
            Ok(found) => found,
            Err(error) => return failed(StatusCode::BAD_GATEWAY, error, "/queue"),
        };
        let facts_text = facts
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(" · ");
        if !needle.is_empty() {
            let haystack = format!(
                "{message}\n{facts_text}\n{}\n{}",
                tip.labels.join(" "),
                tip.id
            )
            .to_lowercase();
            if !haystack.contains(&needle) {
                continue;
            }
        }
        let attachments: Vec<&api::Item> = tip
            .items
            .iter()
            .filter(|i| i.kind == "attachment")
            .collect();
        let mut preview: String = message
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(240)
            .collect();
        if message.chars().count() > 240 {
            preview.push('…');
        }
        rows.push(QueueRow {
            short: tip.id[..8].to_owned(),
            id: tip.id.clone(),
            received: date(&tip.received_at),
            status: status_name(&tip.status),
            labels: tip.labels.join(", "),
            assignee: tip.assignee.clone().unwrap_or_default(),
            preview,
            facts: facts_text,
            files: if attachments.is_empty() {
                String::new()
            } else {
                format!(
                    "{} file(s), {}",
                    attachments.len(),
                    size(attachments.iter().map(|i| i.size).sum())
                )
            },
            added_more: tip.source_activity_at.is_some(),
            unread: desk.tips.memory.is_unread(tip),
            problem,
        });
    }
    if query.sort == "oldest" {
        rows.reverse();
    }
    page(&QueuePage {
        csrf: desk.guard.csrf().to_owned(),
        total: rows.len(),
        rows,
        q: query.q,
        status: query.status,
        sort: query.sort,
        done: confirmation(&query.done),
        statuses: STATUSES.iter().map(|s| (*s, status_name(s))).collect(),
        analysts,
    })
}

/// The first submission's message and facts of a tip, opened here; and whether an item
/// failed its check.
async fn preview(
    desk: &Desk,
    tip: &api::Tip,
) -> anyhow::Result<(String, Vec<(&'static str, String)>, bool)> {
    let keys = desk.tips.keys(tip).await?;
    let mut problem = false;
    let mut facts = Vec::new();
    let mut message = String::new();
    // The first submission's report (or, for an older tip, its message and facts items).
    for item in tip
        .items
        .iter()
        .filter(|i| i.added_at.is_none() && (carries_facts(&i.kind) || carries_message(&i.kind)))
    {
        let opened = desk.tips.open(item, &keys).await?;
        problem |= !opened.check.passed();
        let (text, json) = opened.send(&item.kind);
        if let Some(json) = json {
            facts = facts_of(&json);
        }
        if let Some(text) = text {
            message = text;
        }
    }
    Ok((message, facts, problem))
}

/// The queue's form: its token, the action, and every ticked tip (`id`, once each).
#[derive(Default)]
struct BulkForm {
    csrf: String,
    action: String,
    label: String,
    assignee: String,
    id: Vec<String>,
}

/// `POST /bulk`: spam or close the ticked tips, in one change on the server.
pub async fn bulk(State(desk): State<Arc<Desk>>, body: axum::body::Bytes) -> Response {
    let mut form = BulkForm::default();
    for (name, value) in form_urlencoded::parse(&body) {
        match name.as_ref() {
            "csrf" => form.csrf = value.into_owned(),
            "action" => form.action = value.into_owned(),
            "label" => form.label = value.into_owned(),
            "assignee" => form.assignee = value.into_owned(),
            "id" => form.id.push(value.into_owned()),
            _ => {}
        }
    }
    if !desk.guard.csrf_ok(&form.csrf) {
        return failed(
            StatusCode::FORBIDDEN,
            "the form is not this desk's",
            "/queue",
        );
    }
    if form.id.is_empty() {
        return Redirect::to("/queue?done=none").into_response();
    }
    if form.id.iter().any(|id| !valid_id(id)) {
        return failed(StatusCode::BAD_REQUEST, "a malformed tip id", "/queue");
    }
    let done = match form.action.as_str() {
        // Spam and close: one change on the server, in one transaction.
        "spam" | "close" => {
            let action = if form.action == "spam" {
                api::BulkAction::Spam
            } else {
                api::BulkAction::Close
            };
            super::super::bulk::change(&desk.tips.api, action, form.id)
                .await
                .map(|_| ())
        }
        // The rest tip by tip, as the tip page's triage does.
        "new" | "in_review" | "verified" => {
            let status = form.action.clone();
            each_tip(&desk, &form.id, |_| api::Triage {
                status: Some(status.clone()),
                ..api::Triage::default()
            })
            .await
        }
        "label" => {
            let label = form.label.trim().to_owned();
            if label.is_empty() {
                return failed(StatusCode::BAD_REQUEST, "type the label to add", "/queue");
            }
            each_tip(&desk, &form.id, |tip| api::Triage {
                labels: Some(with_label(&tip.labels, &label)),
                ..api::Triage::default()
            })
            .await
        }
        "assign" => {
            let assignee = form.assignee.trim().to_owned();
            each_tip(&desk, &form.id, |_| api::Triage {
                assignee: Some((!assignee.is_empty()).then(|| assignee.clone())),
                ..api::Triage::default()
            })
            .await
        }
        _ => return failed(StatusCode::BAD_REQUEST, "unknown action", "/queue"),
    };
    match done {
        Ok(()) => Redirect::to(&format!("/queue?done={}", form.action)).into_response(),
        Err(error) => failed(StatusCode::BAD_GATEWAY, error, "/queue"),
    }
}

/// `labels` with `label` added, unless it is there already in any case.
fn with_label(labels: &[String], label: &str) -> Vec<String> {
    let mut labels = labels.to_vec();
    if !labels
        .iter()
        .any(|l| l.to_lowercase() == label.to_lowercase())
    {
        labels.push(label.to_owned());
    }
    labels
}

/// Applies `change` (made from the tip as it is now) to each tip in turn; stops at the first
/// refusal, saying how many were changed before it.
async fn each_tip(
    desk: &Desk,
    ids: &[String],
    change: impl Fn(&api::Tip) -> api::Triage,
) -> anyhow::Result<()> {
    let api = &desk.tips.api;
    for (done, id) in ids.iter().enumerate() {
        let tip = tip_of(desk, id).await?;
        let response = api
            .send_json(
                reqwest::Method::PATCH,
                &format!("/api/v1/tips/{id}"),
                &change(&tip),
            )
            .await?;
        if !response.status().is_success() {
            let error = super::super::http::refused(response).await;
            anyhow::bail!(
                "{done} tip(s) were changed, then tip {}: {error:#}",
                &id[..8]
            );
        }
    }
    Ok(())
}

struct FileView {
    id: String,
    name: String,
    size: String,
    /// What the file says about its maker, if anything.
    warning: Option<String>,
    strippable: bool,
}

struct Entry {
    when: String,
    who: String,
    text: Option<String>,
    facts: Vec<(&'static str, String)>,
    files: Vec<FileView>,
    /// Why this item's content cannot be trusted, if so.
    problem: Option<String>,
    class: &'static str,
}

#[derive(Template)]
#[template(path = "local/tip.html")]
struct TipPage {
    csrf: String,
    id: String,
    status: String,
    status_label: &'static str,
    labels: String,
    assignee: String,
    received: String,
    entries: Vec<Entry>,
    done: Option<String>,
    statuses: Vec<(&'static str, &'static str)>,
    /// Who the tip can be assigned to.
    analysts: Vec<String>,
}

#[derive(Deserialize, Default)]
pub struct TipQuery {
    #[serde(default)]
    done: String,
}

async fn tip_of(desk: &Desk, id: &str) -> anyhow::Result<api::Tip> {
    if !valid_id(id) {
        anyhow::bail!("no such tip");
    }
    let tip: api::Tip = desk
        .tips
        .api
        .get_json(&format!("/api/v1/tips/{id}"))
        .await?;
    if tip.id != id || tip.items.iter().any(|i| !valid_id(&i.id)) {
        anyhow::bail!("the server sent another tip, or a malformed item id");
    }
    Ok(tip)
}

fn problem_of(item: &api::Item, opened: &OpenedItem) -> Option<String> {
    (!opened.check.passed()).then(|| {
        format!(
            "Item {} failed its integrity check: it is not what was received, or cannot be checked ({:?}). Do not rely on it.",
            item.id, opened.check
        )
    })
}

/// `GET /tips/{id}`: the tip as one conversation, in time order.
pub async fn tip(
    State(desk): State<Arc<Desk>>,
    Path(id): Path<String>,
    Query(query): Query<TipQuery>,
) -> Response {
    let analysts = desk
        .tips
        .api
        .get_json::<api::AnalystList>("/api/v1/analysts")
        .await;
    match (conversation(&desk, &id).await, analysts) {
        (Ok((tip, entries)), Ok(analysts)) => {
            if let Err(error) = desk.tips.memory.mark_read(&tip) {
                return failed(StatusCode::INTERNAL_SERVER_ERROR, error, "/queue");
            }
            page(&TipPage {
                csrf: desk.guard.csrf().to_owned(),
                id: tip.id.clone(),
                status_label: status_name(&tip.status),
                status: tip.status.clone(),
                labels: tip.labels.join(", "),
                assignee: tip.assignee.clone().unwrap_or_default(),
                received: date(&tip.received_at),
                entries,
                done: confirmation(&query.done),
                statuses: STATUSES.iter().map(|s| (*s, status_name(s))).collect(),
                analysts: analysts.analysts,
            })
        }
        (Err(error), _) | (_, Err(error)) => failed(StatusCode::BAD_GATEWAY, error, "/queue"),
    }
}

async fn conversation(desk: &Desk, id: &str) -> anyhow::Result<(api::Tip, Vec<Entry>)> {
    let tip = tip_of(desk, id).await?;
    let keys = desk.tips.keys(&tip).await?;
    // The attachments each submission's facts name, with their original names.
    let mut names = std::collections::HashMap::new();
    let mut entries: Vec<Entry> = Vec::new();
    // The kind of the item before, in the tip's order.
    let mut previous: Option<&str> = None;
    for item in &tip.items {
        let follows_a_message = previous == Some("message");
        previous = Some(item.kind.as_str());
        let when = date(item.added_at.as_ref().unwrap_or(&tip.received_at));
        match item.kind.as_str() {
            kind if carries_facts(kind) || carries_message(kind) => {
                let opened = desk.tips.open(item, &keys).await?;
                let (text, json) = opened.send(kind);
                let json = json.unwrap_or_default();
                for a in json["attachments"].as_array().cloned().unwrap_or_default() {
                    if let (Some(item), Some(name)) =
                        (a["item_id"].as_str(), a["file_name"].as_str())
                    {
                        names.insert(item.to_owned(), name.to_owned());
                    }
                }
                let facts = facts_of(&json);
                let problem = problem_of(item, &opened);
                // An older tip's facts item belongs to the message item just before it (and
                // only then: a facts item after anything else is an addition of files only).
                if kind == "facts"
                    && follows_a_message
                    && let Some(last) = entries.last_mut()
                {
                    last.facts = facts;
                    last.problem = last.problem.take().or(problem);
                    continue;
                }
                entries.push(Entry {
                    who: if item.added_at.is_none() {
                        "The source's report".into()
                    } else {
                        "The source added".into()
                    },
                    when,
                    text,
                    facts,
                    files: Vec::new(),
                    problem,
                    class: "source",
                });
            }
            "attachment" => {
                let name = names
                    .get(&item.id)
                    .cloned()
                    .unwrap_or_else(|| item.id.clone());
                let (warning, strippable, problem) = if item.size <= INSPECT_BYTES {
                    let opened = desk.tips.open(item, &keys).await?;
                    let found = metadata::inspect(&opened.plaintext);
                    (
                        found.any().then(|| warning_text(&found)),
                        found.strippable && found.any(),
                        problem_of(item, &opened),
                    )
                } else {
                    (None, false, None)
                };
                let file = FileView {
                    id: item.id.clone(),
                    name,
                    size: size(item.size),
                    warning,
                    strippable,
                };
                match entries.last_mut() {
                    Some(last) if last.class == "source" => {
                        last.files.push(file);
                        if last.problem.is_none() {
                            last.problem = problem;
                        }
                    }
                    _ => entries.push(Entry {
                        who: "The source added".into(),
                        when,
                        text: None,
                        facts: Vec::new(),
                        files: vec![file],
                        problem,
                        class: "source",
                    }),
                }
            }
            "note" | "reply" => {
                let opened = desk.tips.open(item, &keys).await?;
                let json = opened.json().unwrap_or_default();
                let author = json["author"].as_str().unwrap_or("an analyst").to_owned();
                let reply = item.kind == "reply";
                entries.push(Entry {
                    who: if reply {
                        format!("Reply to the source, by {author}")
                    } else {
                        format!("Internal note by {author}")
                    },
                    when,
                    text: json["text"].as_str().map(str::to_owned),
                    facts: Vec::new(),
                    files: Vec::new(),
                    problem: problem_of(item, &opened),
                    class: if reply { "reply" } else { "note" },
                });
            }
            _ => {}
        }
    }
    Ok((tip, entries))
}

fn warning_text(found: &metadata::Findings) -> String {
    let mut parts = Vec::new();
    if found.location {
        parts.push("the place where it was made (GPS position)".to_owned());
    }
    parts.extend(found.other.iter().map(|s| s.to_string()));
    format!(
        "This file carries information about its maker: {}. Do not publish or forward it as it is{}.",
        parts.join(", "),
        if found.strippable {
            "; save the copy without it"
        } else {
            ""
        }
    )
}

#[derive(Deserialize, Default)]
pub struct FileQuery {
    #[serde(default)]
    clean: Option<String>,
}

/// `GET /tips/{tip}/files/{item}`: an attachment, opened here, to save — as it was sent, or
/// (`?clean=1`) without its metadata.
pub async fn file(
    State(desk): State<Arc<Desk>>,
    Path((tip_id, item_id)): Path<(String, String)>,
    Query(query): Query<FileQuery>,
) -> Response {
    let back = format!("/tips/{tip_id}");
    let found = async {
        let tip = tip_of(&desk, &tip_id).await?;
        let item = tip
            .items
            .iter()
            .find(|i| i.id == item_id && i.kind == "attachment")
            .ok_or_else(|| anyhow::anyhow!("no such file on this tip"))?;
        let keys = desk.tips.keys(&tip).await?;
        let opened = desk.tips.open(item, &keys).await?;
        if !opened.check.passed() {
            anyhow::bail!("this file failed its integrity check: it is not what was received");
        }
        let mut name = String::from("file");
        for facts in tip.items.iter().filter(|i| carries_facts(&i.kind)) {
            let json = desk
                .tips
                .open(facts, &keys)
                .await?
                .json()
                .unwrap_or_default();
            for a in json["attachments"].as_array().cloned().unwrap_or_default() {
                if a["item_id"].as_str() == Some(&item_id)
                    && let Some(n) = a["file_name"].as_str()
                {
                    name = n.to_owned();
                }
            }
        }
        anyhow::Ok((opened, name))
    }
    .await;
    let (opened, name) = match found {
        Ok(found) => found,
        Err(error) => return failed(StatusCode::NOT_FOUND, error, &back),
    };
    let (bytes, name) = if query.clean.is_some() {
        match metadata::strip(&opened.plaintext) {
            Some(clean) => (clean, format!("clean-{name}")),
            None => {
                return failed(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "the desk can strip JPEG and PNG files only",
                    &back,
                );
            }
        }
    } else {
        (opened.plaintext.to_vec(), name)
    };
    let safe = super::super::files::safe_name(&name);
    let encoded: String = form_urlencoded::byte_serialize(safe.as_bytes()).collect();
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"download\"; filename*=UTF-8''{encoded}"
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[derive(Deserialize)]
pub struct TriageForm {
    csrf: String,
    status: String,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    assignee: String,
}

/// Why a form post about tip `id` is refused, if it is: not this desk's own form, or a
/// malformed id.
fn refused_form(desk: &Desk, csrf: &str, id: &str) -> Option<Response> {
    if !desk.guard.csrf_ok(csrf) {
        return Some(failed(
            StatusCode::FORBIDDEN,
            "the form is not this desk's",
            &format!("/tips/{id}"),
        ));
    }
    (!valid_id(id)).then(|| failed(StatusCode::NOT_FOUND, "no such tip", "/queue"))
}

/// `POST /tips/{id}/triage`: status, labels (comma-separated) and assignee.
pub async fn triage(
    State(desk): State<Arc<Desk>>,
    Path(id): Path<String>,
    Form(form): Form<TriageForm>,
) -> Response {
    if let Some(refused) = refused_form(&desk, &form.csrf, &id) {
        return refused;
    }
    let back = format!("/tips/{id}");
    let mut labels: Vec<String> = Vec::new();
    for label in form
        .labels
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        // One label whatever its case: the first spelling wins.
        if !labels
            .iter()
            .any(|l| l.to_lowercase() == label.to_lowercase())
        {
            labels.push(label.to_owned());
        }
    }
    let assignee = form.assignee.trim();
    let body = api::Triage {
        status: Some(form.status),
        labels: Some(labels),
        assignee: Some((!assignee.is_empty()).then(|| assignee.to_owned())),
    };
    let api = &desk.tips.api;
    match api
        .send_json(reqwest::Method::PATCH, &format!("/api/v1/tips/{id}"), &body)
        .await
    {
        Ok(response) if response.status().is_success() => {
            Redirect::to(&format!("{back}?done=triage")).into_response()
        }
        Ok(response) => failed(
            StatusCode::BAD_REQUEST,
            super::super::http::refused(response).await,
            &back,
        ),
        Err(error) => failed(StatusCode::BAD_GATEWAY, error, &back),
    }
}

#[derive(Deserialize)]
pub struct WriteForm {
    csrf: String,
    kind: String,
    text: Zeroizing<String>,
}

/// `POST /tips/{id}/write`: a reply or a note, sealed here; only ciphertext is sent.
pub async fn write(
    State(desk): State<Arc<Desk>>,
    Path(id): Path<String>,
    Form(form): Form<WriteForm>,
) -> Response {
    if let Some(refused) = refused_form(&desk, &form.csrf, &id) {
        return refused;
    }
    let back = format!("/tips/{id}");
    let reply = match form.kind.as_str() {
        "reply" => true,
        "note" => false,
        _ => return failed(StatusCode::BAD_REQUEST, "a reply or a note", &back),
    };
    match desk.tips.write(&id, reply, &form.text).await {
        Ok(_) => Redirect::to(&format!(
            "{back}?done={}",
            if reply { "reply" } else { "note" }
        ))
        .into_response(),
        Err(error) => failed(StatusCode::BAD_REQUEST, error, &back),
    }
}
