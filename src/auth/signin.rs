//! Signing in: password, then TOTP, with per-account back-off — and the server-side sessions
//! that follow.
//!
//! Every failure gets the same answer and costs the same password hash: an unknown user name,
//! a disabled account, an account in back-off, a wrong password and a wrong or replayed code
//! are indistinguishable from outside. Back-off is per account, so a flood against one name
//! never locks out another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::password::{PasswordHasherPool, Verified};
use super::{Role, totp, valid_username};
use crate::audit::{Audit, AuditAction};
use crate::clock::coarsen;
use crate::secrets::ServerSecret;
use crate::store::{AnalystRecord, Store, StoreError};

/// The audit trail's actor for an attempt that did not sign anyone in.
const ATTEMPT: &str = "(sign-in attempt)";
/// Failures allowed before back-off starts.
const FREE_FAILURES: i64 = 3;
/// The longest back-off, in seconds.
const MAX_BACKOFF: i64 = 15 * 60;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("invalid credentials")]
    Invalid,
    #[error("too many sign-ins at once")]
    Busy,
    #[error("sign-in failed: {0}")]
    Internal(String),
}

impl From<StoreError> for SignInError {
    fn from(e: StoreError) -> Self {
        SignInError::Internal(e.to_string())
    }
}

impl From<super::password::PasswordError> for SignInError {
    fn from(e: super::password::PasswordError) -> Self {
        match e {
            super::password::PasswordError::Busy => SignInError::Busy,
            other => SignInError::Internal(other.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Analyst {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

/// Session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_seconds: i64,
    pub max_seconds: i64,
}

/// A new session's secrets, returned once to the client; only their hashes are stored.
pub struct NewSession {
    pub token: Zeroizing<String>,
    pub csrf_token: Zeroizing<String>,
    pub expires_at: i64,
}

pub struct Authenticator {
    store: Store,
    hasher: PasswordHasherPool,
    secret: Arc<ServerSecret>,
    pub policy: SessionPolicy,
    /// `privacy.time_granularity_seconds`: how coarsely a session's last use is stored.
    time_granularity: i64,
    last_seen: LastSeen,
}

/// When sessions were last used, to the second, kept in this process's memory only.
///
/// The database stores a session's last use rounded down like a received time
/// (`sessions.last_seen_at`): the exact time of an analyst's last request would narrow down when
/// the tip they had just opened arrived. The idle timeout still holds to the second on the node
/// that serves a session: it remembers the exact time next to the rounded value it stored. When
/// the stored value is not the one it wrote (another node used the session in a later period,
/// the node restarted, or the row was changed), it takes the last second of the stored period:
/// the session then ends at most one period late on that node, never early. (Several nodes
/// serving one session within one period each go by their own last time, and may end it early.)
#[derive(Default)]
struct LastSeen(Mutex<HashMap<Vec<u8>, Seen>>);

#[derive(Clone, Copy)]
struct Seen {
    stored: i64,
    exact: i64,
}

impl LastSeen {
    fn get(&self, token_hash: &[u8]) -> Option<Seen> {
        self.lock().get(token_hash).copied()
    }

    fn record(&self, token_hash: Vec<u8>, seen: Seen) {
        self.lock().insert(token_hash, seen);
    }

    fn forget(&self, token_hash: &[u8]) {
        self.lock().remove(token_hash);
    }

    fn forget_idle(&self, now: i64, idle_seconds: i64) {
        self.lock()
            .retain(|_, seen| seen.exact + idle_seconds > now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Seen>> {
        // A panic while holding it cannot leave the map half-written: use it as it is.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Back-off after `failures` failed attempts, in seconds (0 while under the free allowance).
pub fn backoff_seconds(failures: i64) -> i64 {
    if failures < FREE_FAILURES {
        0
    } else {
        let exponent = (failures - FREE_FAILURES).min(20) as u32;
        (1i64 << exponent).min(MAX_BACKOFF)
    }
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn random_token() -> Zeroizing<String> {
    use base64::Engine;
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).expect("the operating system's random source works");
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..]))
}

impl Authenticator {
    pub fn new(
        store: Store,
        hasher: PasswordHasherPool,
        secret: Arc<ServerSecret>,
        policy: SessionPolicy,
        time_granularity: u64,
    ) -> Self {
        Self {
            store,
            hasher,
            secret,
            policy,
            time_granularity: time_granularity.max(1) as i64,
            last_seen: LastSeen::default(),
        }
    }

    /// Checks a sign-in attempt; every refusal is `SignInError::Invalid`.
    pub async fn sign_in(
        &self,
        username: &str,
        password: Zeroizing<String>,
        code: &str,
        now: i64,
    ) -> Result<Analyst, SignInError> {
        let record = if valid_username(username) {
            self.store.analyst(username).await?
        } else {
            None
        };
        let usable = record.filter(|r| !r.disabled);
        // Each attempt on a real account is counted (and its back-off started) atomically
        // *before* the password is checked, so that parallel guesses cannot all slip in before
        // the first failure is recorded. An account in back-off reserves nothing.
        let reserved = match &usable {
            Some(r) => self.store.reserve_signin_attempt(r.id, now).await?,
            None => false,
        };
        // Unknown, disabled and throttled accounts are checked against a decoy hash: the same
        // work, the same answer.
        let stored = usable
            .as_ref()
            .filter(|_| reserved)
            .map(|r| r.password_hash.clone());
        let for_rehash = password.clone();
        let verified = self.hasher.verify(password, stored).await?;
        let Some(record) = usable else {
            // The name is not an account: record that much, not what was typed (it may be a
            // password typed into the wrong field).
            self.audit(
                ATTEMPT,
                AuditAction::SigninFailure,
                "(unknown)",
                "unknown or disabled account",
                now,
            )
            .await;
            return Err(SignInError::Invalid);
        };
        if !reserved {
            self.audit(
                ATTEMPT,
                AuditAction::SigninFailure,
                &record.username,
                "account in back-off",
                now,
            )
            .await;
            return Err(SignInError::Invalid);
        }
        if let Err(why) = self.check_factors(&record, &verified, code, now).await? {
            self.audit(
                ATTEMPT,
                AuditAction::SigninFailure,
                &record.username,
                why,
                now,
            )
            .await;
            return Err(SignInError::Invalid);
        }
        // Only now, with both factors right, may a weak hash be upgraded.
        let new_hash = match verified {
            Verified::YesWeak => Some(self.hasher.hash(for_rehash).await?),
            _ => None,
        };
        self.store
            .record_signin_success(record.id, new_hash.as_deref())
            .await?;
        self.audit(
            &record.username,
            AuditAction::SigninSuccess,
            &record.username,
            "",
            now,
        )
        .await;
        Ok(Analyst {
            id: record.id,
            role: Role::parse(&record.role).unwrap_or(Role::Analyst),
            username: record.username,
        })
    }

    /// The rest of an attempt whose password was checked (`verified`) on an account that may
    /// try now: opens the account's TOTP secret, checks `code` and claims its step. `Err` says
    /// why the attempt fails, for the audit trail.
    async fn check_factors(
        &self,
        record: &AnalystRecord,
        verified: &Verified,
        code: &str,
        now: i64,
    ) -> Result<Result<(), &'static str>, StoreError> {
        // A secret sealed for another account (moved onto this one in the database) or with
        // another server secret does not open: the attempt fails like a wrong code.
        let opened = totp::open_secret(&self.secret, &record.username, &record.totp_secret);
        let unopenable = opened.is_none();
        if unopenable && !matches!(verified, Verified::No) {
            tracing::error!(
                analyst = %record.username,
                "this account's TOTP secret does not open for it: it was sealed for another account or with another server secret (changed in the database outside tipbox?); give it a new one with `tipbox analyst reset-2fa`"
            );
        }
        let step = match (verified, opened) {
            (Verified::No, _) | (_, None) => None,
            (_, Some(secret)) => totp::check(&secret, code, now as u64, record.totp_last_step),
        };
        // Claiming the step is atomic: of two attempts racing with one code, one wins.
        let accepted = match step {
            Some(step) => self.store.claim_totp_step(record.id, step).await?,
            None => false,
        };
        Ok(if accepted {
            Ok(())
        } else {
            Err(match verified {
                Verified::No => "wrong password",
                _ if unopenable => "the stored TOTP secret does not open for this account",
                _ => "wrong or reused code",
            })
        })
    }

    /// Changes a signed-in analyst's password, given the current one and a fresh TOTP code.
    ///
    /// The attempt is a sign-in as far as back-off goes: it is counted before the password is
    /// checked, an account in back-off is refused, and a wrong password or code leaves the
    /// failure counted (each with an audit entry). On success the new password (checked by the
    /// caller against `check_new_password`) is hashed, the back-off cleared, and every other
    /// session of the analyst ended, but `session_token`'s; returns how many were ended.
    pub async fn change_password(
        &self,
        analyst: &Analyst,
        session_token: &str,
        current: Zeroizing<String>,
        code: &str,
        new: Zeroizing<String>,
        now: i64,
    ) -> Result<u64, SignInError> {
        let refused = async |why: &str| {
            self.audit(
                &analyst.username,
                AuditAction::PasswordChangeFailure,
                &analyst.username,
                why,
                now,
            )
            .await;
            SignInError::Invalid
        };
        let Some(record) = self
            .store
            .analyst(&analyst.username)
            .await?
            .filter(|r| r.id == analyst.id && !r.disabled)
        else {
            return Err(refused("the account is gone or disabled").await);
        };
        let reserved = self.store.reserve_signin_attempt(record.id, now).await?;
        // An account in back-off is checked against the decoy: the same work, the same answer.
        let stored = reserved.then(|| record.password_hash.clone());
        let verified = self.hasher.verify(current, stored).await?;
        if !reserved {
            return Err(refused("account in back-off").await);
        }
        if let Err(why) = self.check_factors(&record, &verified, code, now).await? {
            return Err(refused(why).await);
        }
        let new_hash = self.hasher.hash(new).await?;
        let audit = Audit {
            at: now,
            actor: &analyst.username,
            action: AuditAction::PasswordChange,
            subject: &analyst.username,
            detail: serde_json::json!({}),
        };
        let ended = self
            .store
            .change_password(record.id, &new_hash, &token_hash(session_token), &audit)
            .await?;
        ended.ok_or(SignInError::Invalid)
    }

    /// Starts a session for a signed-in analyst.
    pub async fn start_session(
        &self,
        analyst: &Analyst,
        kind: &str,
        now: i64,
    ) -> Result<NewSession, StoreError> {
        let token = random_token();
        let csrf_token = self.csrf_token(&token);
        let expires_at = now + self.policy.max_seconds;
        let hash = token_hash(&token);
        let seen = Seen {
            stored: coarsen(now, self.time_granularity as u64),
            exact: now,
        };
        self.store
            .create_session(
                &hash,
                analyst.id,
                kind,
                &token_hash(&csrf_token),
                now,
                seen.stored,
                expires_at,
            )
            .await?;
        self.last_seen.record(hash, seen);
        Ok(NewSession {
            token,
            csrf_token,
            expires_at,
        })
    }

    /// The analyst a session token belongs to, if it is valid now (and marks it used).
    pub async fn session(
        &self,
        token: &str,
        kind: &str,
        now: i64,
    ) -> Result<Option<(Analyst, Vec<u8>, i64)>, StoreError> {
        let hash = token_hash(token);
        let Some(found) = self.store.find_session(&hash).await? else {
            self.last_seen.forget(&hash);
            return Ok(None);
        };
        if found.kind != kind {
            return Ok(None);
        }
        let last_seen = match self.last_seen.get(&hash) {
            Some(seen) if seen.stored == found.last_seen_at => seen.exact,
            _ => found.last_seen_at + self.time_granularity - 1,
        };
        if found.disabled || found.expires_at <= now || last_seen + self.policy.idle_seconds <= now
        {
            self.store.delete_session(&hash).await?;
            self.last_seen.forget(&hash);
            return Ok(None);
        }
        // Written only when the rounded time moves on: most requests write nothing.
        let stored = coarsen(now, self.time_granularity as u64).max(found.last_seen_at);
        if stored != found.last_seen_at {
            self.store.touch_session(&hash, stored).await?;
        }
        self.last_seen.record(hash, Seen { stored, exact: now });
        Ok(Some((
            Analyst {
                id: found.analyst_id,
                role: Role::parse(&found.role).unwrap_or(Role::Analyst),
                username: found.username,
            },
            found.csrf_hash,
            found.expires_at,
        )))
    }

    /// The key of the audit chain (for checking it).
    pub fn audit_key(&self) -> crate::audit::AuditKey {
        crate::audit::AuditKey::new(&self.secret)
    }

    /// Deletes sessions that have ended, so the database keeps no record of old sign-ins.
    /// (Going by the stored, rounded last use: a session is deleted here once it has certainly
    /// been idle long enough; `session` ends it to the second on the node that served it.)
    pub async fn sweep_sessions(&self, now: i64) -> Result<u64, StoreError> {
        self.last_seen.forget_idle(now, self.policy.idle_seconds);
        self.store
            .delete_ended_sessions(now, self.policy.idle_seconds + self.time_granularity - 1)
            .await
    }

    /// The CSRF token of a session: derived from the session token with a server subkey, so
    /// every page can carry it without it being stored anywhere in clear.
    pub fn csrf_token(&self, session_token: &str) -> Zeroizing<String> {
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let key = self.secret.subkey("csrf tokens");
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_ref()).expect("any key length");
        mac.update(session_token.as_bytes());
        Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()),
        )
    }

    /// Whether `submitted` is the CSRF token of the session whose stored hash is `csrf_hash`.
    pub fn csrf_matches(submitted: &str, csrf_hash: &[u8]) -> bool {
        subtle::ConstantTimeEq::ct_eq(token_hash(submitted).as_slice(), csrf_hash).into()
    }

    pub async fn end_session(
        &self,
        token: &str,
        analyst: &Analyst,
        now: i64,
    ) -> Result<(), StoreError> {
        let hash = token_hash(token);
        self.store.delete_session(&hash).await?;
        self.last_seen.forget(&hash);
        self.audit(
            &analyst.username,
            AuditAction::Signout,
            &analyst.username,
            "",
            now,
        )
        .await;
        Ok(())
    }

    /// Audit failures are logged, not fatal: a full disk must not also lock analysts out.
    async fn audit(&self, actor: &str, action: AuditAction, subject: &str, why: &str, now: i64) {
        let detail = if why.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::json!({ "reason": why })
        };
        let audit = Audit {
            at: now,
            actor,
            action,
            subject,
            detail,
        };
        if let Err(error) = self.store.append_audit(&audit).await {
            tracing::error!(%error, "could not write the audit trail");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_seconds(1), 0);
        assert_eq!(backoff_seconds(2), 0);
        assert_eq!(backoff_seconds(3), 1);
        assert_eq!(backoff_seconds(4), 2);
        assert_eq!(backoff_seconds(8), 32);
        assert_eq!(backoff_seconds(100), MAX_BACKOFF);
    }
}
