//! Queries for the review queue: listing tips newest first with filters and keyset
//! pagination, one tip's (or a selection's) details, triage updates, and which items an
//! analyst has pulled.

use sqlx::QueryBuilder;

use super::write::{Lock, WriteTx, retrying};
use super::{Result, Store, on_backend};
use crate::audit::Audit;

/// Tip statuses, in workflow order.
pub const STATUSES: [&str; 5] = ["new", "in_review", "verified", "closed", "spam"];

/// Whether two labels are the same label: labels match regardless of case ("Threats" is
/// "threats"), in every script, the same on both backends (so compared here, not in SQL, whose
/// `LOWER` folds only ASCII on SQLite and follows the database's locale on PostgreSQL).
pub fn same_label(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    pub status: Option<String>,
    /// A label, matched regardless of case (`same_label`).
    pub label: Option<String>,
    /// A username; `Some("")` means "unassigned".
    pub assignee: Option<String>,
    /// Only tips with an item this analyst has not pulled yet.
    pub unpulled_by: Option<i64>,
    /// Only tips the source has added to since the first submission.
    pub followed_up: bool,
    /// Keyset pagination: tips strictly older than this (received_at, id).
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemSummary {
    pub id: String,
    pub kind: String,
    pub size: i64,
    pub key_set: i64,
    /// When it was added after the tip itself (a source's follow-up, a note, a reply).
    pub added_at: Option<i64>,
    /// The commitment to its plaintext made at intake (`crate::commitment`); `None` for an
    /// item received before commitments existed.
    pub commitment: Option<Vec<u8>>,
    /// The last re-keying: when (rounded) and by which analyst.
    pub replaced: Option<Replacement>,
}

/// Who last re-keyed an item, and when (rounded like received times).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Replacement {
    pub at: i64,
    pub by: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TipSummary {
    pub id: String,
    pub received_at: i64,
    pub status: String,
    pub labels: Vec<String>,
    pub assignee: Option<String>,
    pub items: Vec<ItemSummary>,
    /// The key set of the tip's message (every item of a new tip shares it).
    pub key_set: Option<i64>,
}

impl TipSummary {
    /// When the source last added something after the first submission, if ever.
    pub fn source_activity_at(&self) -> Option<i64> {
        self.items
            .iter()
            .filter(|i| {
                matches!(
                    i.kind.as_str(),
                    "report" | "message" | "facts" | "attachment"
                )
            })
            .filter_map(|i| i.added_at)
            .max()
    }
}

/// A triage change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TriageUpdate {
    pub status: Option<String>,
    pub labels: Option<Vec<String>>,
    /// `Some(None)` unassigns.
    pub assignee_id: Option<Option<i64>>,
}

impl Store {
    /// Tips newest first (by coarse received time, then id), with the filters applied.
    pub async fn list_tips(&self, filter: &QueueFilter) -> Result<Vec<TipSummary>> {
        // The label as each tip spells it: every stored spelling of it.
        let spellings = match &filter.label {
            Some(wanted) => {
                let spellings: Vec<String> = self
                    .label_spellings()
                    .await?
                    .into_iter()
                    .filter(|label| same_label(label, wanted))
                    .collect();
                if spellings.is_empty() {
                    return Ok(Vec::new());
                }
                Some(spellings)
            }
            None => None,
        };
        let rows: Vec<(String, i64, String, Option<String>)> = on_backend!(&self.pool, p => {
            let mut q = QueryBuilder::new(
                "SELECT t.id, t.received_at, t.status, a.username FROM tips t \
                 LEFT JOIN analysts a ON a.id = t.assignee_id WHERE 1 = 1",
            );
            if let Some(status) = &filter.status {
                q.push(" AND t.status = ").push_bind(status.clone());
            }
            if let Some(spellings) = &spellings {
                q.push(" AND EXISTS (SELECT 1 FROM tip_labels l WHERE l.tip_id = t.id AND l.label IN (");
                let mut list = q.separated(", ");
                for label in spellings {
                    list.push_bind(label.clone());
                }
                q.push("))");
            }
            match filter.assignee.as_deref() {
                Some("") => {
                    q.push(" AND t.assignee_id IS NULL");
                }
                Some(name) => {
                    q.push(" AND a.username = ").push_bind(name.to_owned());
                }
                None => {}
            }
            if let Some(analyst) = filter.unpulled_by {
                q.push(
                    " AND EXISTS (SELECT 1 FROM items i WHERE i.tip_id = t.id AND NOT EXISTS \
                     (SELECT 1 FROM item_pulls p WHERE p.item_id = i.id AND p.analyst_id = ",
                )
                .push_bind(analyst)
                .push("))");
            }
            if filter.followed_up {
                q.push(
                    " AND EXISTS (SELECT 1 FROM items i WHERE i.tip_id = t.id AND i.added_at IS NOT NULL \
                     AND i.kind IN ('report', 'message', 'facts', 'attachment'))",
                );
            }
            if let Some((received_at, id)) = &filter.before {
                q.push(" AND (t.received_at < ")
                    .push_bind(*received_at)
                    .push(" OR (t.received_at = ")
                    .push_bind(*received_at)
                    .push(" AND t.id < ")
                    .push_bind(id.clone())
                    .push("))");
            }
            q.push(" ORDER BY t.received_at DESC, t.id DESC LIMIT ").push_bind(filter.limit);
            q.build_query_as().fetch_all(p).await?
        });
        self.with_items_and_labels(rows).await
    }

    pub async fn tip(&self, id: &str) -> Result<Option<TipSummary>> {
        const Q: &str = "SELECT t.id, t.received_at, t.status, a.username FROM tips t \
             LEFT JOIN analysts a ON a.id = t.assignee_id WHERE t.id = $1";
        let row: Option<(String, i64, String, Option<String>)> =
            on_backend!(&self.pool, p => sqlx::query_as(Q).bind(id).fetch_optional(p).await?);
        Ok(self
            .with_items_and_labels(row.into_iter().collect())
            .await?
            .pop())
    }

    /// These tips (those of them that exist), newest first like the queue.
    pub async fn tips_by_id(&self, ids: &[String]) -> Result<Vec<TipSummary>> {
        let mut rows: Vec<(String, i64, String, Option<String>)> = Vec::new();
        // IN lists in pieces, far below both backends' bind limits.
        for piece in ids.chunks(500) {
            rows.extend(on_backend!(&self.pool, p => {
                let mut q = QueryBuilder::new(
                    "SELECT t.id, t.received_at, t.status, a.username FROM tips t \
                     LEFT JOIN analysts a ON a.id = t.assignee_id WHERE t.id IN (",
                );
                let mut list = q.separated(", ");
                for id in piece {
                    list.push_bind(id.clone());
                }
                q.push(")");
                q.build_query_as().fetch_all(p).await?
            }));
        }
        rows.sort_by(|a, b| (b.1, &b.0).cmp(&(a.1, &a.0)));
        rows.dedup_by(|a, b| a.0 == b.0);
        self.with_items_and_labels(rows).await
    }

    async fn with_items_and_labels(
        &self,
        rows: Vec<(String, i64, String, Option<String>)>,
    ) -> Result<Vec<TipSummary>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        // IN lists in pieces, far below SQLite's bind limit, whatever page size a caller asks.
        type ItemRow = (
            String,
            String,
            String,
            i64,
            i64,
            Option<i64>,
            Option<Vec<u8>>,
            Option<i64>,
            Option<String>,
        );
        let mut items: Vec<ItemRow> = Vec::new();
        let mut labels: Vec<(String, String)> = Vec::new();
        for piece in ids.chunks(500) {
            items.extend(on_backend!(&self.pool, p => {
                let mut q = QueryBuilder::new("SELECT tip_id, id, kind, size, key_set_id, added_at, commitment, replaced_at, replaced_by FROM items WHERE tip_id IN (");
                let mut list = q.separated(", ");
                for id in piece {
                    list.push_bind(id.clone());
                }
                q.push(") ORDER BY tip_id, position");
                q.build_query_as::<ItemRow>().fetch_all(p).await?
            }));
            labels.extend(on_backend!(&self.pool, p => {
                let mut q = QueryBuilder::new("SELECT tip_id, label FROM tip_labels WHERE tip_id IN (");
                let mut list = q.separated(", ");
                for id in piece {
                    list.push_bind(id.clone());
                }
                q.push(") ORDER BY tip_id, label");
                q.build_query_as::<(String, String)>().fetch_all(p).await?
            }));
        }
        let mut items_by_tip: std::collections::HashMap<String, Vec<ItemSummary>> =
            std::collections::HashMap::new();
        for (tip, item, kind, size, key_set, added_at, commitment, replaced_at, replaced_by) in
            items
        {
            items_by_tip.entry(tip).or_default().push(ItemSummary {
                id: item,
                kind,
                size,
                key_set,
                added_at,
                commitment,
                replaced: replaced_at
                    .zip(replaced_by)
                    .map(|(at, by)| Replacement { at, by }),
            });
        }
        let mut labels_by_tip: std::collections::HashMap<&str, Vec<String>> =
            std::collections::HashMap::new();
        for (tip, label) in &labels {
            labels_by_tip
                .entry(tip.as_str())
                .or_default()
                .push(label.clone());
        }
        Ok(rows
            .into_iter()
            .map(|(id, received_at, status, assignee)| {
                let items = items_by_tip.remove(id.as_str()).unwrap_or_default();
                TipSummary {
                    key_set: items.first().map(|i| i.key_set),
                    labels: labels_by_tip.remove(id.as_str()).unwrap_or_default(),
                    items,
                    id,
                    received_at,
                    status,
                    assignee,
                }
            })
            .collect())
    }

    /// Applies a triage change, with its audit entry; false (and no entry) if there is no such
    /// tip.
    pub async fn update_tip(
        &self,
        id: &str,
        update: &TriageUpdate,
        audit: &Audit<'_>,
    ) -> Result<bool> {
        const Q_ASSIGNEE: &str = "UPDATE tips SET assignee_id = $2 WHERE id = $1";
        const Q_CLEAR_LABELS: &str = "DELETE FROM tip_labels WHERE tip_id = $1";
        const Q_LABEL: &str =
            "INSERT INTO tip_labels (tip_id, label) VALUES ($1, $2) ON CONFLICT DO NOTHING";
        retrying(move || async move {
            let mut tx = self.write(Lock::Rows).await?;
            if !tx.lock_tip(id).await? {
                return Ok(false);
            }
            if let Some(status) = &update.status {
                tx.set_status(&[id], status).await?;
            }
            on_backend!(tx.conn(), c => {
                if let Some(assignee) = update.assignee_id {
                    sqlx::query(Q_ASSIGNEE).bind(id).bind(assignee).execute(&mut *c).await?;
                }
                if let Some(labels) = &update.labels {
                    sqlx::query(Q_CLEAR_LABELS).bind(id).execute(&mut *c).await?;
                    for label in labels {
                        sqlx::query(Q_LABEL).bind(id).bind(label).execute(&mut *c).await?;
                    }
                }
            });
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// The tip a committed item belongs to (staged items belong to none and are not served).
    pub async fn item_tip(&self, item_id: &str) -> Result<Option<String>> {
        const Q: &str = "SELECT tip_id FROM items WHERE id = $1 AND tip_id IS NOT NULL";
        let row: Option<Option<String>> = on_backend!(&self.pool, p => sqlx::query_scalar(Q).bind(item_id).fetch_optional(p).await?);
        Ok(row.flatten())
    }

    /// Adds a sealed analyst note (with `commitment` to its plaintext) to a tip, after its other
    /// items, with its audit entry; false if there is no tip.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_note(
        &self,
        tip_id: &str,
        item_id: &str,
        key_set_id: i64,
        sealed: &[u8],
        commitment: [u8; crate::commitment::COMMITMENT_BYTES],
        added_at: i64,
        audit: &Audit<'_>,
    ) -> Result<bool> {
        let note = &super::followup::analyst_item(item_id, "note", key_set_id, sealed, commitment);
        retrying(move || async move {
            let mut tx = self.write(Lock::Acknowledged).await?;
            if !tx.add_item(tip_id, note, added_at).await? {
                return Ok(false);
            }
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Records that an analyst has pulled these items (a download, or a tip's archive), with the
    /// download's audit entry.
    pub async fn record_pulls(
        &self,
        analyst_id: i64,
        item_ids: &[&str],
        audit: &Audit<'_>,
    ) -> Result<()> {
        const Q: &str =
            "INSERT INTO item_pulls (analyst_id, item_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
        retrying(move || async move {
            let mut tx = self.write(Lock::Rows).await?;
            on_backend!(tx.conn(), c => {
                for item_id in item_ids {
                    sqlx::query(Q).bind(analyst_id).bind(*item_id).execute(&mut *c).await?;
                }
            });
            tx.append_audit(audit).await?;
            tx.commit().await
        })
        .await
    }

    /// Every label on some tip, as spelled there, sorted.
    pub async fn label_spellings(&self) -> Result<Vec<String>> {
        const Q: &str = "SELECT DISTINCT label FROM tip_labels ORDER BY label";
        Ok(on_backend!(&self.pool, p => sqlx::query_scalar(Q).fetch_all(p).await?))
    }

    pub async fn analyst_id(&self, username: &str) -> Result<Option<i64>> {
        const Q: &str = "SELECT id FROM analysts WHERE username = $1 AND disabled = FALSE";
        Ok(
            on_backend!(&self.pool, p => sqlx::query_scalar(Q).bind(username).fetch_optional(p).await?),
        )
    }
}

impl WriteTx {
    /// Sets the status of these tips (call `lock_tips` first); returns how many there were.
    pub(super) async fn set_status(&mut self, tip_ids: &[&str], status: &str) -> Result<u64> {
        // IN lists in pieces, far below both backends' bind limits.
        const PER_STATEMENT: usize = 500;
        let mut set = 0;
        for piece in tip_ids.chunks(PER_STATEMENT) {
            set += on_backend!(self.conn(), c => {
                let mut q = QueryBuilder::new("UPDATE tips SET status = ");
                q.push_bind(status).push(" WHERE id IN (");
                let mut list = q.separated(", ");
                for id in piece {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build().execute(c).await?.rows_affected()
            });
        }
        Ok(set)
    }
}
