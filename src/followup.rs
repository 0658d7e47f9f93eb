//! Sources' sessions: a source who comes back with the receipt gets a short session that
//! holds, in this process's memory only, the tip it may see and the age identity that opens
//! the replies sealed to it.
//!
//! Why memory and not the database: the identity is derived from the receipt, which the
//! server never keeps. Writing it anywhere (even sealed under a server key) would leave, on a
//! seized disk, the keys to the replies of every source signed in at that moment. So a session
//! lives on the node that opened it; the browser holds only a random 256-bit token in a
//! `__Host-` cookie, and the map is keyed by the token's SHA-256, so not even memory keeps the
//! token itself. The identity's secret scalar is zeroized when the last reference is dropped:
//! at sign-out, on expiry, or when the sweeper passes.
//!
//! Sign-ins are budgeted per client (a Tor circuit or an address) with the public listener's
//! other budgets (`web::middleware::budgets`), not here: a global budget would let one client
//! lock every source out of their replies. A receipt's 128 random bits are the defence against
//! guessing; the budget only bounds the work a flood can cause.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::config::FollowupConfig;

/// The cookie that carries a source's session token.
pub const SESSION_COOKIE: &str = "__Host-tipbox_case";

/// What a request in a source's session may use.
#[derive(Clone)]
pub struct SourceSession {
    pub tip_id: String,
    pub identity: Arc<age::x25519::Identity>,
    csrf: Arc<Zeroizing<String>>,
}

impl SourceSession {
    /// The token every form of this session carries.
    pub fn csrf(&self) -> &str {
        self.csrf.as_str()
    }

    pub fn check_csrf(&self, submitted: &str) -> bool {
        submitted.len() == self.csrf.len()
            && bool::from(submitted.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

struct Entry {
    session: SourceSession,
    started: Instant,
    last_seen: Instant,
}

#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    /// As many sessions as allowed are open.
    Full,
}

pub struct SourceSessions {
    sessions: Mutex<HashMap<[u8; 32], Entry>>,
    idle: Duration,
    max_life: Duration,
    capacity: usize,
}

impl SourceSessions {
    pub fn new(config: &FollowupConfig) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            idle: Duration::from_secs(config.session_idle_seconds),
            max_life: Duration::from_secs(config.session_max_seconds),
            capacity: config.max_sessions,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session for a tip; returns the token for the cookie.
    pub fn open(
        &self,
        tip_id: String,
        identity: age::x25519::Identity,
    ) -> Result<Zeroizing<String>, OpenError> {
        let token = Zeroizing::new(random_hex());
        let now = Instant::now();
        let mut sessions = self.lock();
        // One session per tip: signing in again ends the earlier one. Otherwise one receipt,
        // signed in over and over, could fill every slot and lock all other sources out.
        sessions.retain(|_, e| e.session.tip_id != tip_id);
        if sessions.len() >= self.capacity {
            sessions.retain(|_, e| !self.expired(e, now));
            if sessions.len() >= self.capacity {
                return Err(OpenError::Full);
            }
        }
        sessions.insert(
            key(&token),
            Entry {
                session: SourceSession {
                    tip_id,
                    identity: Arc::new(identity),
                    csrf: Arc::new(Zeroizing::new(random_hex())),
                },
                started: now,
                last_seen: now,
            },
        );
        Ok(token)
    }

    /// The live session of a token, refreshed; an expired one is ended here.
    pub fn get(&self, token: &str) -> Option<SourceSession> {
        let now = Instant::now();
        let key = key(token);
        let mut sessions = self.lock();
        let entry = sessions.get_mut(&key)?;
        if self.expired(entry, now) {
            sessions.remove(&key);
            return None;
        }
        entry.last_seen = now;
        Some(entry.session.clone())
    }

    /// Ends a session (sign-out). Its identity is dropped, and with it zeroized, once no request
    /// still uses it.
    pub fn end(&self, token: &str) {
        self.lock().remove(&key(token));
    }

    /// Ends expired sessions; returns how many are left.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, e| !self.expired(e, now));
        sessions.len()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expired(&self, entry: &Entry, now: Instant) -> bool {
        now.duration_since(entry.last_seen) >= self.idle
            || now.duration_since(entry.started) >= self.max_life
    }

    /// Sweeps expired sessions every `every` until the process ends.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let sessions = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                sessions.sweep();
            }
        })
    }
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 256 random bits, hex.
fn random_hex() -> String {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).expect("the operating system's random source works");
    hex::encode(&bytes[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(idle: u64, max: u64, capacity: usize) -> FollowupConfig {
        FollowupConfig {
            session_idle_seconds: idle,
            session_max_seconds: max,
            max_sessions: capacity,
        }
    }

    #[test]
    fn sessions_open_end_and_are_bounded() {
        let sessions = SourceSessions::new(&config(60, 120, 2));
        // Signing in again to the same tip replaces the session, it does not take a slot.
        let first = sessions
            .open("a".into(), age::x25519::Identity::generate())
            .unwrap();
        let a = sessions
            .open("a".into(), age::x25519::Identity::generate())
            .unwrap();
        let b = sessions
            .open("b".into(), age::x25519::Identity::generate())
            .unwrap();
        assert_eq!(
            sessions
                .open("c".into(), age::x25519::Identity::generate())
                .unwrap_err(),
            OpenError::Full
        );
        let session = sessions.get(&a).unwrap();
        assert_eq!(session.tip_id, "a");
        assert!(session.check_csrf(session.csrf()));
        assert!(!session.check_csrf("0"));
        assert!(sessions.get("not a token").is_none());
        assert!(
            sessions.get(&first).is_none(),
            "the earlier session of tip a ended"
        );
        sessions.end(&a);
        assert!(sessions.get(&a).is_none());
        assert_eq!(sessions.get(&b).unwrap().tip_id, "b");
        assert_eq!(sessions.len(), 1);
    }

    #[test]
    fn idle_sessions_expire() {
        let sessions = SourceSessions::new(&config(60, 120, 10));
        let token = sessions
            .open("a".into(), age::x25519::Identity::generate())
            .unwrap();
        // Age the session without sleeping.
        for entry in sessions.lock().values_mut() {
            entry.last_seen -= Duration::from_secs(61);
        }
        assert!(sessions.get(&token).is_none());
        assert!(sessions.is_empty());
    }
}
