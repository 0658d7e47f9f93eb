//! Signing in: password, then TOTP, with per-account back-off — and the server-side sessions
//! that follow.
//!
//! Every failure gets the same answer and costs the same password hash: an unknown user name,
//! a disabled account, an account in back-off, a wrong password and a wrong or replayed code
//! are indistinguishable from outside. Back-off is per account, so a flood against one name
//! never locks out another.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::password::{PasswordHasherPool, Verified};
use super::{Role, totp, valid_username};
use crate::audit::{Audit, AuditAction};
use crate::secrets::ServerSecret;
use crate::store::{Store, StoreError};

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
    ) -> Self {
        Self {
            store,
            hasher,
            secret,
            policy,
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
        let step = match (
            &verified,
            totp::open_secret(&self.secret, &record.totp_secret),
        ) {
            (Verified::No, _) => None,
            (_, None) => {
                return Err(SignInError::Internal(
                    "the TOTP secret does not open with this server secret".into(),
                ));
            }
            (_, Some(secret)) => totp::check(&secret, code, now as u64, record.totp_last_step),
        };
        // Claiming the step is atomic: of two sign-ins racing with one code, one wins.
        let accepted = match step {
            Some(step) => self.store.claim_totp_step(record.id, step).await?,
            None => false,
        };
        if !accepted {
            let why = if matches!(verified, Verified::No) {
                "wrong password"
            } else {
                "wrong or reused code"
            };
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
        self.store
            .create_session(
                &token_hash(&token),
                analyst.id,
                kind,
                &token_hash(&csrf_token),
                now,
                expires_at,
            )
            .await?;
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
            return Ok(None);
        };
        if found.kind != kind {
            return Ok(None);
        }
        if found.disabled
            || found.expires_at <= now
            || found.last_seen_at + self.policy.idle_seconds <= now
        {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        }
        self.store.touch_session(&hash, now).await?;
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
    pub async fn sweep_sessions(&self, now: i64) -> Result<u64, StoreError> {
        self.store
            .delete_ended_sessions(now, self.policy.idle_seconds)
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
        self.store.delete_session(&token_hash(token)).await?;
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
