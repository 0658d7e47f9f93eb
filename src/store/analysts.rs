//! Queries for analyst accounts, their sessions, and the audit trail.

use sqlx::Row;

use super::{Pool, Result, Store, StoreError};
use crate::audit::AuditEntry;

/// Appends an audit entry inside the transaction `$tx`, so that an action and its entry are
/// committed together or not at all. Two transactions appending at once race for the next
/// sequence number: the loser fails on the primary key and is retried by its caller.
macro_rules! append_audit_in {
    ($tx:ident, $key:expr, $actor:expr, $action:expr, $subject:expr, $detail:expr, $now:expr) => {{
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *$tx)
                .await?;
        let (seq, prev) = head.map_or((1, $crate::audit::GENESIS.to_owned()), |(s, h)| (s + 1, h));
        let hash =
            $crate::audit::entry_hash($key, seq, $now, $actor, $action, $subject, $detail, &prev);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind($now)
        .bind($actor)
        .bind($action)
        .bind($subject)
        .bind($detail)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *$tx)
        .await?;
    }};
}

pub(super) use append_audit_in;

/// An analyst account as stored.
#[derive(Debug, Clone)]
pub struct AnalystRecord {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub password_hash: String,
    pub totp_secret: Vec<u8>,
    pub totp_last_step: i64,
    pub failed_attempts: i64,
    pub locked_until: i64,
    pub disabled: bool,
    pub created_at: i64,
}

/// A session joined with its analyst.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub analyst_id: i64,
    pub username: String,
    pub role: String,
    pub disabled: bool,
    pub kind: String,
    pub csrf_hash: Vec<u8>,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

const ANALYST_COLUMNS: &str = "id, username, role, password_hash, totp_secret, totp_last_step, \
     failed_attempts, locked_until, disabled, created_at";

fn analyst_from_row<R: Row>(r: &R) -> Result<AnalystRecord>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    bool: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AnalystRecord {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        role: r.try_get("role")?,
        password_hash: r.try_get("password_hash")?,
        totp_secret: r.try_get("totp_secret")?,
        totp_last_step: r.try_get("totp_last_step")?,
        failed_attempts: r.try_get("failed_attempts")?,
        locked_until: r.try_get("locked_until")?,
        disabled: r.try_get("disabled")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    pub async fn create_analyst(
        &self,
        username: &str,
        role: &str,
        password_hash: &str,
        totp_secret: &[u8],
        now: i64,
    ) -> Result<i64> {
        const Q_FIND: &str = "SELECT COUNT(*) FROM analysts WHERE username = $1";
        const Q: &str = "INSERT INTO analysts (username, role, password_hash, totp_secret, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let exists: i64 =
            on_pool!(self, p => sqlx::query_scalar(Q_FIND).bind(username).fetch_one(p).await?);
        if exists > 0 {
            return Err(StoreError::Setup(format!(
                "an analyst named {username} already exists"
            )));
        }
        Ok(on_pool!(self, p => sqlx::query_scalar(Q)
            .bind(username)
            .bind(role)
            .bind(password_hash)
            .bind(totp_secret)
            .bind(now)
            .fetch_one(p)
            .await?))
    }

    pub async fn analyst(&self, username: &str) -> Result<Option<AnalystRecord>> {
        let q = format!("SELECT {ANALYST_COLUMNS} FROM analysts WHERE username = $1");
        let q = sqlx::AssertSqlSafe(q);
        on_pool!(self, p => match sqlx::query(q).bind(username).fetch_optional(p).await? {
            Some(row) => Ok(Some(analyst_from_row(&row)?)),
            None => Ok(None),
        })
    }

    pub async fn list_analysts(&self) -> Result<Vec<AnalystRecord>> {
        let q = sqlx::AssertSqlSafe(format!(
            "SELECT {ANALYST_COLUMNS} FROM analysts ORDER BY username"
        ));
        on_pool!(self, p => sqlx::query(q)
            .fetch_all(p)
            .await?
            .iter()
            .map(analyst_from_row)
            .collect())
    }

    /// Disables an account and ends its sessions; false if there is no such account.
    pub async fn disable_analyst(&self, username: &str) -> Result<bool> {
        const Q: &str = "UPDATE analysts SET disabled = TRUE WHERE username = $1";
        const Q_SESSIONS: &str = "DELETE FROM sessions WHERE analyst_id IN (SELECT id FROM analysts WHERE username = $1)";
        let n =
            on_pool!(self, p => sqlx::query(Q).bind(username).execute(p).await?.rows_affected());
        on_pool!(self, p => sqlx::query(Q_SESSIONS).bind(username).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Replaces an account's TOTP secret, forgets its last step and ends its sessions.
    pub async fn reset_totp(&self, username: &str, sealed_secret: &[u8]) -> Result<bool> {
        const Q: &str =
            "UPDATE analysts SET totp_secret = $2, totp_last_step = 0 WHERE username = $1";
        const Q_SESSIONS: &str = "DELETE FROM sessions WHERE analyst_id IN (SELECT id FROM analysts WHERE username = $1)";
        let n = on_pool!(self, p => sqlx::query(Q).bind(username).bind(sealed_secret).execute(p).await?.rows_affected());
        on_pool!(self, p => sqlx::query(Q_SESSIONS).bind(username).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Records that `step` was used; false if it (or a later one) already was.
    pub async fn claim_totp_step(&self, analyst_id: i64, step: i64) -> Result<bool> {
        const Q: &str =
            "UPDATE analysts SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2";
        let n = on_pool!(self, p => sqlx::query(Q).bind(analyst_id).bind(step).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Counts a sign-in attempt as a failure up front and starts the back-off it earns (see
    /// `auth::signin::backoff_seconds`); false, changing nothing, while the account is in
    /// back-off. A successful sign-in clears both (`record_signin_success`).
    pub async fn reserve_signin_attempt(&self, analyst_id: i64, now: i64) -> Result<bool> {
        const Q: &str = "UPDATE analysts SET failed_attempts = failed_attempts + 1, locked_until = $2 + \
             CASE WHEN failed_attempts + 1 < 3 THEN 0 \
             WHEN failed_attempts + 1 = 3 THEN 1 WHEN failed_attempts + 1 = 4 THEN 2 \
             WHEN failed_attempts + 1 = 5 THEN 4 WHEN failed_attempts + 1 = 6 THEN 8 \
             WHEN failed_attempts + 1 = 7 THEN 16 WHEN failed_attempts + 1 = 8 THEN 32 \
             WHEN failed_attempts + 1 = 9 THEN 64 WHEN failed_attempts + 1 = 10 THEN 128 \
             WHEN failed_attempts + 1 = 11 THEN 256 WHEN failed_attempts + 1 = 12 THEN 512 \
             ELSE 900 END \
             WHERE id = $1 AND locked_until <= $2";
        let n = on_pool!(self, p => sqlx::query(Q).bind(analyst_id).bind(now).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Ends an account's back-off (after an admin has checked who was locked out, and why).
    pub async fn clear_backoff(&self, username: &str) -> Result<bool> {
        const Q: &str =
            "UPDATE analysts SET failed_attempts = 0, locked_until = 0 WHERE username = $1";
        let n =
            on_pool!(self, p => sqlx::query(Q).bind(username).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Clears the back-off, and stores an upgraded password hash if there is one.
    pub async fn record_signin_success(
        &self,
        analyst_id: i64,
        new_hash: Option<&str>,
    ) -> Result<()> {
        const Q: &str = "UPDATE analysts SET failed_attempts = 0, locked_until = 0, \
             password_hash = COALESCE($2, password_hash) WHERE id = $1";
        on_pool!(self, p => sqlx::query(Q).bind(analyst_id).bind(new_hash).execute(p).await?.rows_affected());
        Ok(())
    }

    pub async fn create_session(
        &self,
        token_hash: &[u8],
        analyst_id: i64,
        kind: &str,
        csrf_hash: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        const Q: &str = "INSERT INTO sessions (token_hash, analyst_id, kind, csrf_hash, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)";
        on_pool!(self, p => sqlx::query(Q)
            .bind(token_hash)
            .bind(analyst_id)
            .bind(kind)
            .bind(csrf_hash)
            .bind(now)
            .bind(expires_at)
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }

    pub async fn find_session(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>> {
        const Q: &str = "SELECT s.analyst_id, a.username, a.role, a.disabled, s.kind, s.csrf_hash, \
             s.last_seen_at, s.expires_at FROM sessions s JOIN analysts a ON a.id = s.analyst_id \
             WHERE s.token_hash = $1";
        on_pool!(self, p => match sqlx::query(Q).bind(token_hash).fetch_optional(p).await? {
            None => Ok(None),
            Some(r) => Ok(Some(SessionRecord {
                analyst_id: r.try_get("analyst_id")?,
                username: r.try_get("username")?,
                role: r.try_get("role")?,
                disabled: r.try_get("disabled")?,
                kind: r.try_get("kind")?,
                csrf_hash: r.try_get("csrf_hash")?,
                last_seen_at: r.try_get("last_seen_at")?,
                expires_at: r.try_get("expires_at")?,
            })),
        })
    }

    pub async fn touch_session(&self, token_hash: &[u8], now: i64) -> Result<()> {
        const Q: &str = "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1";
        on_pool!(self, p => sqlx::query(Q).bind(token_hash).bind(now).execute(p).await?.rows_affected());
        Ok(())
    }

    pub async fn delete_ended_sessions(&self, now: i64, idle_seconds: i64) -> Result<u64> {
        const Q: &str = "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at + $2 <= $1";
        Ok(
            on_pool!(self, p => sqlx::query(Q).bind(now).bind(idle_seconds).execute(p).await?.rows_affected()),
        )
    }

    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<()> {
        const Q: &str = "DELETE FROM sessions WHERE token_hash = $1";
        on_pool!(self, p => sqlx::query(Q).bind(token_hash).execute(p).await?.rows_affected());
        Ok(())
    }

    /// The key that chains the audit trail, or an error for a store opened without it.
    pub(super) fn audit_key(&self) -> Result<std::sync::Arc<crate::audit::AuditKey>> {
        self.audit_key
            .clone()
            .ok_or_else(|| StoreError::Setup("the audit trail needs the server secret".into()))
    }

    /// Appends an entry to the audit trail, chained to the one before it. Concurrent appends
    /// (several nodes) race for the next sequence number; the loser retries.
    pub async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
        now: i64,
    ) -> Result<()> {
        let key = self.audit_key()?;
        let mut last_error = None;
        for attempt in 0..8u64 {
            let result: Result<()> = on_pool!(self, p => async {
                let mut tx = p.begin().await?;
                append_audit_in!(tx, &key, actor, action, subject, detail, now);
                tx.commit().await?;
                Ok(())
            }.await);
            match result {
                Ok(()) => return Ok(()),
                Err(e) => last_error = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(5 * (attempt + 1))).await;
        }
        Err(last_error.expect("at least one attempt"))
    }

    pub async fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        const Q: &str = "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_log ORDER BY seq";
        on_pool!(self, p => sqlx::query(Q)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| -> Result<AuditEntry> {
                Ok(AuditEntry {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    subject: r.try_get("subject")?,
                    detail: r.try_get("detail")?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect())
    }
}
