//! `tipbox review bulk`: one action over many tips, by id — mark them spam, close them, or (for
//! admins) delete them — in one request, which the server applies in one transaction.

use anyhow::bail;

use super::http::{Api, refused};
use crate::api;

/// Applies `action` to the tips `ids` and says what became of each. Deleting, which cannot be
/// undone, needs `yes`.
pub async fn bulk(action: api::BulkAction, ids: Vec<String>, yes: bool) -> anyhow::Result<()> {
    if action == api::BulkAction::Delete && !yes {
        bail!(
            "deleting {} tips cannot be undone: say --yes to delete them",
            ids.len()
        );
    }
    let api = Api::from_saved_session()?;
    let answer = change(&api, action, ids).await?;
    let done = match answer.action {
        api::BulkAction::Spam => "marked as spam",
        api::BulkAction::Close => "closed",
        api::BulkAction::Delete => "deleted",
    };
    println!("{} tips {done}", answer.changed);
    for id in &answer.unchanged {
        println!("already so: {id}");
    }
    for id in &answer.missing {
        println!("no such tip: {id}");
    }
    Ok(())
}

/// One bulk change on the server (`POST /api/v1/tips/bulk`, one transaction): what became of
/// each tip.
pub(super) async fn change(
    api: &Api,
    action: api::BulkAction,
    ids: Vec<String>,
) -> anyhow::Result<api::BulkChanged> {
    let response = api
        .send_json(
            reqwest::Method::POST,
            "/api/v1/tips/bulk",
            &api::BulkChange { action, ids },
        )
        .await?;
    if !response.status().is_success() {
        return Err(refused(response).await);
    }
    Ok(serde_json::from_str(&response.text().await?)?)
}
