//! Queries for analyst accounts and their sessions; the changes an operator makes to an account
//! are committed with their audit entry.

use sqlx::Row;

use super::write::{Lock, retrying};
use super::{Result, Store, StoreError, on_backend};
use crate::audit::Audit;

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
    /// Creates an account, with its audit entry.
    pub async fn create_analyst(
        &self,
        username: &str,
        role: &str,
        password_hash: &str,
        totp_secret: &[u8],
        now: i64,
        audit: &Audit<'_>,
    ) -> Result<i64> {
        const Q_FIND: &str = "SELECT COUNT(*) FROM analysts WHERE username = $1";
        const Q: &str = "INSERT INTO analysts (username, role, password_hash, totp_secret, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id";
        retrying(move || async move {
            let mut tx = self.write(Lock::Rows).await?;
            let exists: i64 = on_backend!(tx.conn(), c => sqlx::query_scalar(Q_FIND).bind(username).fetch_one(c).await?);
            if exists > 0 {
                return Err(StoreError::Setup(format!(
                    "an analyst named {username} already exists"
                )));
            }
            let id: i64 = on_backend!(tx.conn(), c => sqlx::query_scalar(Q)
                .bind(username)
                .bind(role)
                .bind(password_hash)
                .bind(totp_secret)
                .bind(now)
                .fetch_one(c)
                .await?);
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(id)
        })
        .await
    }

    pub async fn analyst(&self, username: &str) -> Result<Option<AnalystRecord>> {
        let q = format!("SELECT {ANALYST_COLUMNS} FROM analysts WHERE username = $1");
        let q = sqlx::AssertSqlSafe(q);
        on_backend!(&self.pool, p => match sqlx::query(q).bind(username).fetch_optional(p).await? {
            Some(row) => Ok(Some(analyst_from_row(&row)?)),
            None => Ok(None),
        })
    }

    pub async fn list_analysts(&self) -> Result<Vec<AnalystRecord>> {
        let q = sqlx::AssertSqlSafe(format!(
            "SELECT {ANALYST_COLUMNS} FROM analysts ORDER BY username"
        ));
        on_backend!(&self.pool, p => sqlx::query(q)
            .fetch_all(p)
            .await?
            .iter()
            .map(analyst_from_row)
            .collect())
    }

    /// Disables an account and ends its sessions, with its audit entry; false (and no entry) if
    /// there is no such account.
    pub async fn disable_analyst(&self, username: &str, audit: &Audit<'_>) -> Result<bool> {
        const Q: &str = "UPDATE analysts SET disabled = TRUE WHERE username = $1";
        self.change_account(username, Q, None, audit).await
    }

    /// Replaces an account's TOTP secret, forgets its last step and ends its sessions, with its
    /// audit entry; false (and no entry) if there is no such account.
    pub async fn reset_totp(
        &self,
        username: &str,
        sealed_secret: &[u8],
        audit: &Audit<'_>,
    ) -> Result<bool> {
        const Q: &str =
            "UPDATE analysts SET totp_secret = $2, totp_last_step = 0 WHERE username = $1";
        self.change_account(username, Q, Some(sealed_secret), audit)
            .await
    }

    /// Runs `change` (an `UPDATE` of the account named `$1`, with `$2` = `value` if given), ends
    /// the account's sessions and appends `audit`, in one transaction; false (rolled back) if
    /// there is no such account.
    async fn change_account(
        &self,
        username: &str,
        change: &'static str,
        value: Option<&[u8]>,
        audit: &Audit<'_>,
    ) -> Result<bool> {
        const Q_SESSIONS: &str = "DELETE FROM sessions WHERE analyst_id IN (SELECT id FROM analysts WHERE username = $1)";
        retrying(move || async move {
            let mut tx = self.write(Lock::Rows).await?;
            let changed = on_backend!(tx.conn(), c => {
                let q = sqlx::query(change).bind(username);
                let q = match value {
                    Some(value) => q.bind(value),
                    None => q,
                };
                q.execute(c).await?.rows_affected()
            });
            if changed != 1 {
                return Ok(false);
            }
            on_backend!(tx.conn(), c => sqlx::query(Q_SESSIONS).bind(username).execute(c).await?.rows_affected());
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Seals again, in one write transaction, every account's TOTP secret for which `reseal`
    /// (given the username and the sealed secret) returns a new sealed value; returns how many.
    /// Each is replaced only if unchanged since it was read. For the one-time start-up pass that
    /// binds secrets sealed before they were bound to their account
    /// (`app::bind_rows_stored_before_bindings`).
    pub async fn reseal_totp_secrets(
        &self,
        reseal: impl Fn(&str, &[u8]) -> Option<Vec<u8>>,
    ) -> Result<u64> {
        const Q_SELECT: &str = "SELECT id, username, totp_secret FROM analysts ORDER BY id";
        const Q_UPDATE: &str =
            "UPDATE analysts SET totp_secret = $3 WHERE id = $1 AND totp_secret = $2";
        let reseal = &reseal;
        retrying(move || async move {
            let mut tx = self.write(Lock::Rows).await?;
            let rows: Vec<(i64, String, Vec<u8>)> = on_backend!(tx.conn(), c => sqlx::query_as(Q_SELECT).fetch_all(c).await?);
            let mut resealed = 0;
            for (id, username, sealed) in &rows {
                if let Some(new) = reseal(username, sealed) {
                    resealed += on_backend!(tx.conn(), c => sqlx::query(Q_UPDATE).bind(id).bind(sealed).bind(&new).execute(c).await?.rows_affected());
                }
            }
            tx.commit().await?;
            Ok(resealed)
        })
        .await
    }

    /// Records that `step` was used; false if it (or a later one) already was.
    pub async fn claim_totp_step(&self, analyst_id: i64, step: i64) -> Result<bool> {
        const Q: &str =
            "UPDATE analysts SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2";
        let n = on_backend!(&self.pool, p => sqlx::query(Q).bind(analyst_id).bind(step).execute(p).await?.rows_affected());
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
        let n = on_backend!(&self.pool, p => sqlx::query(Q).bind(analyst_id).bind(now).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Ends an account's back-off (after an admin has checked who was locked out, and why),
    /// with its audit entry; false (and no entry) if there is no such account.
    pub async fn clear_backoff(&self, username: &str, audit: &Audit<'_>) -> Result<bool> {
        const Q: &str =
            "UPDATE analysts SET failed_attempts = 0, locked_until = 0 WHERE username = $1";
        retrying(move || async move {
            let mut tx = self.write(Lock::Rows).await?;
            let n = on_backend!(tx.conn(), c => sqlx::query(Q).bind(username).execute(c).await?.rows_affected());
            if n != 1 {
                return Ok(false);
            }
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Clears the back-off, and stores an upgraded password hash if there is one.
    pub async fn record_signin_success(
        &self,
        analyst_id: i64,
        new_hash: Option<&str>,
    ) -> Result<()> {
        const Q: &str = "UPDATE analysts SET failed_attempts = 0, locked_until = 0, \
             password_hash = COALESCE($2, password_hash) WHERE id = $1";
        on_backend!(&self.pool, p => sqlx::query(Q).bind(analyst_id).bind(new_hash).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Replaces a (still enabled) account's password hash, ends its back-off and every session of
    /// it but the one whose token hash is `keep_session`, with its audit entry, in one
    /// transaction; the number of sessions ended, or `None` (and no entry) if the account is
    /// gone or disabled.
    pub async fn change_password(
        &self,
        analyst_id: i64,
        password_hash: &str,
        keep_session: &[u8],
        audit: &Audit<'_>,
    ) -> Result<Option<u64>> {
        const Q: &str = "UPDATE analysts SET password_hash = $2, failed_attempts = 0, locked_until = 0 \
             WHERE id = $1 AND disabled = FALSE";
        const Q_SESSIONS: &str = "DELETE FROM sessions WHERE analyst_id = $1 AND token_hash <> $2";
        retrying(move || async move {
            let mut tx = self.write(Lock::Rows).await?;
            let changed = on_backend!(tx.conn(), c => sqlx::query(Q).bind(analyst_id).bind(password_hash).execute(c).await?.rows_affected());
            if changed != 1 {
                return Ok(None);
            }
            let ended = on_backend!(tx.conn(), c => sqlx::query(Q_SESSIONS).bind(analyst_id).bind(keep_session).execute(c).await?.rows_affected());
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(Some(ended))
        })
        .await
    }

    /// Stores a new session. `last_seen_at` is rounded like a received time (see
    /// `auth::signin::Authenticator::session`); `created_at` is the sign-in's own time.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_session(
        &self,
        token_hash: &[u8],
        analyst_id: i64,
        kind: &str,
        csrf_hash: &[u8],
        created_at: i64,
        last_seen_at: i64,
        expires_at: i64,
    ) -> Result<()> {
        const Q: &str = "INSERT INTO sessions (token_hash, analyst_id, kind, csrf_hash, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_backend!(&self.pool, p => sqlx::query(Q)
            .bind(token_hash)
            .bind(analyst_id)
            .bind(kind)
            .bind(csrf_hash)
            .bind(created_at)
            .bind(last_seen_at)
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
        on_backend!(&self.pool, p => match sqlx::query(Q).bind(token_hash).fetch_optional(p).await? {
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

    /// Moves a session's (rounded) last use forward; never back.
    pub async fn touch_session(&self, token_hash: &[u8], last_seen_at: i64) -> Result<()> {
        const Q: &str =
            "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1 AND last_seen_at < $2";
        on_backend!(&self.pool, p => sqlx::query(Q).bind(token_hash).bind(last_seen_at).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Deletes sessions past their end, or whose stored last use is `idle_seconds` or more ago.
    pub async fn delete_ended_sessions(&self, now: i64, idle_seconds: i64) -> Result<u64> {
        const Q: &str = "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at + $2 <= $1";
        Ok(
            on_backend!(&self.pool, p => sqlx::query(Q).bind(now).bind(idle_seconds).execute(p).await?.rows_affected()),
        )
    }

    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<()> {
        const Q: &str = "DELETE FROM sessions WHERE token_hash = $1";
        on_backend!(&self.pool, p => sqlx::query(Q).bind(token_hash).execute(p).await?.rows_affected());
        Ok(())
    }
}
