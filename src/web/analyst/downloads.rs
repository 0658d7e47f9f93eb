//! Sealed items leaving the server, for the desk and the API alike: one item's age file,
//! streamed chunk by chunk, or every item of a tip as one tar archive. Each is audited as a
//! download and remembered as pulled by the analyst.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AnalystState;
use super::actions::entry;
use super::error::ActionError;
use crate::audit::AuditAction;
use crate::auth::signin::Analyst;
use crate::ids::valid_id;

/// Streams one sealed item (audited as a download, and remembered as pulled).
pub async fn sealed_item(
    app: &AnalystState,
    analyst: &Analyst,
    id: &str,
) -> Result<Response, ActionError> {
    if !valid_id(id) {
        return Err(ActionError::NotFound("no such item"));
    }
    let store = app.intake.store.clone();
    let tip = store
        .item_tip(id)
        .await?
        .ok_or(ActionError::NotFound("no such item"))?;
    let audit = entry(
        analyst,
        AuditAction::ItemDownload,
        id,
        serde_json::json!({ "tip": tip }),
    );
    store.record_pulls(analyst.id, &[id], &audit).await?;
    let item = id.to_owned();
    let chunks = futures_util::stream::unfold((store, 0i64, false), move |(store, seq, done)| {
        let item = item.clone();
        async move {
            if done {
                return None;
            }
            match store.item_chunk(&item, seq).await {
                Ok(Some(chunk)) => {
                    Some((Ok(axum::body::Bytes::from(chunk)), (store, seq + 1, false)))
                }
                Ok(None) => None,
                Err(error) => Some((
                    Err(std::io::Error::other(error.to_string())),
                    (store, seq, true),
                )),
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.age\""),
            ),
        ],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
}

/// Streams every sealed item of a tip as one tar archive (`<tip>/<item>.age` plus a
/// `manifest.json`), built on a blocking thread and handed over in bounded pieces.
pub async fn tip_archive(
    app: &AnalystState,
    analyst: &Analyst,
    id: &str,
) -> Result<Response, ActionError> {
    if !valid_id(id) {
        return Err(ActionError::NotFound("no such tip"));
    }
    let store = app.intake.store.clone();
    let tip = store
        .tip(id)
        .await?
        .ok_or(ActionError::NotFound("no such tip"))?;
    let audit = entry(
        analyst,
        AuditAction::TipDownloadAll,
        id,
        serde_json::json!({ "items": tip.items.len() }),
    );
    let items: Vec<&str> = tip.items.iter().map(|item| item.id.as_str()).collect();
    store.record_pulls(analyst.id, &items, &audit).await?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<axum::body::Bytes>>(4);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter(sender.clone());
        let mut archive = tar::Builder::new(writer);
        let result = (|| -> std::io::Result<()> {
            let manifest = serde_json::to_vec_pretty(&crate::api::Tip::from(&tip))
                .map_err(std::io::Error::other)?;
            append(
                &mut archive,
                &format!("{}/manifest.json", tip.id),
                manifest.len() as u64,
                manifest.as_slice(),
            )?;
            for item in &tip.items {
                let reader = ChunkReader {
                    store: store.clone(),
                    runtime: runtime.clone(),
                    item: item.id.clone(),
                    seq: 0,
                    buffer: Vec::new(),
                    at: 0,
                };
                append(
                    &mut archive,
                    &format!("{}/{}.age", tip.id, item.id),
                    item.size.max(0) as u64,
                    reader,
                )?;
            }
            archive.finish()
        })();
        if let Err(error) = result {
            let _ = sender.blocking_send(Err(error));
        }
    });
    let body =
        futures_util::stream::unfold(
            receiver,
            |mut r| async move { r.recv().await.map(|c| (c, r)) },
        );
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"tip-{id}.tar\""),
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

fn append<W: std::io::Write>(
    archive: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl std::io::Read,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    archive.append_data(&mut header, path, data)
}

/// Hands what tar writes to the response body.
struct ChannelWriter(tokio::sync::mpsc::Sender<std::io::Result<axum::body::Bytes>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(axum::body::Bytes::copy_from_slice(data)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads an item's chunks from the database, one at a time, on a blocking thread.
struct ChunkReader {
    store: crate::store::Store,
    runtime: tokio::runtime::Handle,
    item: String,
    seq: i64,
    buffer: Vec<u8>,
    at: usize,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.buffer.len() {
            let next = self
                .runtime
                .block_on(self.store.item_chunk(&self.item, self.seq))
                .map_err(std::io::Error::other)?;
            match next {
                Some(chunk) => {
                    self.buffer = chunk;
                    self.at = 0;
                    self.seq += 1;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buffer.len() - self.at);
        out[..n].copy_from_slice(&self.buffer[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
