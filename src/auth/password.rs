//! Password hashing with argon2id, off the async threads and behind a bound on how many hashes
//! run at once, so a flood of sign-in attempts can neither starve the server nor exhaust its
//! memory (each hash holds `memory_kib` of RAM while it runs).

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// argon2id parameters; the defaults are the floor the project accepts (64 MiB, 3 passes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("too many sign-ins at once; try again shortly")]
    Busy,
}

/// The outcome of checking a password.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but hashed with weaker parameters than configured: the caller re-hashes it
    /// (with `hash`) once the whole sign-in has succeeded — never before, or the extra work
    /// would tell a guesser that the password was right.
    YesWeak,
}

/// How long a sign-in may wait for a hashing slot before the server answers "busy".
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
pub struct PasswordHasherPool {
    params: HashParams,
    limiter: Arc<Semaphore>,
    /// Hash of a random password with the current parameters: checked against for unknown
    /// user names, so that they take as long as a wrong password.
    decoy: Arc<String>,
}

impl PasswordHasherPool {
    pub fn new(params: HashParams, max_concurrent: usize) -> Result<Self, PasswordError> {
        Self::with_decoy(params, max_concurrent, &crate::auth::generate_password())
    }

    /// A pool whose decoy hash is of `decoy_password` (random in `new`; tests choose it, to show
    /// that even it never signs an unknown user in).
    fn with_decoy(
        params: HashParams,
        max_concurrent: usize,
        decoy_password: &str,
    ) -> Result<Self, PasswordError> {
        let decoy = hash_blocking(params, decoy_password)?;
        Ok(Self {
            params,
            limiter: Arc::new(Semaphore::new(max_concurrent.max(1))),
            decoy: Arc::new(decoy),
        })
    }

    /// A hashing slot. The permit moves into the blocking task, so a client that disconnects
    /// cannot free the slot while its hash still runs (and holds its memory).
    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, PasswordError> {
        tokio::time::timeout(SLOT_WAIT, Arc::clone(&self.limiter).acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)
    }

    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, PasswordError> {
        let permit = self.slot().await?;
        let params = self.params;
        on_hash_thread(permit, move || hash_blocking(params, &password)).await
    }

    /// Checks `password` against `stored` (or, for an unknown user, against the decoy, so that
    /// the answer takes the same time and is always `No`).
    pub async fn verify(
        &self,
        password: Zeroizing<String>,
        stored: Option<String>,
    ) -> Result<Verified, PasswordError> {
        let permit = self.slot().await?;
        let params = self.params;
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.decoy.as_ref().clone());
        on_hash_thread(permit, move || {
            let parsed =
                PasswordHash::new(&stored).map_err(|e| PasswordError::Hash(e.to_string()))?;
            let argon = argon(params)?;
            if argon.verify_password(password.as_bytes(), &parsed).is_err() || !known {
                return Ok(Verified::No);
            }
            Ok(if weaker_than(&parsed, params) {
                Verified::YesWeak
            } else {
                Verified::Yes
            })
        })
        .await
    }
}

/// Runs one hash on a thread of its own at the lowest CPU priority (nice 19), holding the
/// hashing slot until the hash is done.
///
/// Why not `spawn_blocking`: a blocking-pool thread runs at the same priority as the threads
/// that seal and commit submissions, so on a small machine a sign-in flood would take half the
/// CPU from sources. At nice 19 the kernel gives the hash only what the public side leaves
/// idle; a sign-in gets slower under load, a submission does not (benches/README.md,
/// signin_flood). The priority is set per thread (Linux: `setpriority` on a thread id), so the
/// rest of the process is untouched. A thread per hash costs tens of microseconds against a
/// hash of ~100 ms, and the slot count bounds how many exist at once.
async fn on_hash_thread<T: Send + 'static>(
    permit: tokio::sync::OwnedSemaphorePermit,
    work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
) -> Result<T, PasswordError> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("tipbox-argon2".into())
        .spawn(move || {
            let _permit = permit;
            lower_priority();
            // The receiver is gone only if the sign-in was abandoned; the hash still ran to
            // the end with its slot held, which is the point.
            let _ = done.send(work());
        })
        .map_err(|e| PasswordError::Hash(format!("cannot start a hashing thread: {e}")))?;
    result
        .await
        .map_err(|_| PasswordError::Hash("hashing thread ended without an answer".into()))?
}

/// Lowers this thread's scheduling priority to nice 19. Failure is harmless (the hash still
/// runs, at normal priority) and is logged once per thread at debug level.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), HASH_NICENESS)
    {
        log::debug!("could not lower the hashing thread's priority: {e}");
    }
}

/// The niceness of hashing threads: the lowest priority there is.
#[cfg(target_os = "linux")]
const HASH_NICENESS: i32 = 19;

fn argon(params: HashParams) -> Result<Argon2<'static>, PasswordError> {
    let p = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        None,
    )
    .map_err(|e| PasswordError::Params(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

/// Hashes with a fresh random salt; returns the PHC string.
pub fn hash_blocking(params: HashParams, password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon(params)?
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

fn weaker_than(hash: &PasswordHash, wanted: HashParams) -> bool {
    let get = |name: &str| hash.params.get_decimal(name).map(|v| v as u64).unwrap_or(0);
    hash.algorithm.as_str() != "argon2id"
        || get("m") < u64::from(wanted.memory_kib)
        || get("t") < u64::from(wanted.iterations)
        || get("p") < u64::from(wanted.parallelism)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: HashParams = HashParams {
        memory_kib: 8 * 1024,
        iterations: 1,
        parallelism: 1,
    };

    #[tokio::test]
    async fn verify_and_upgrade() {
        let weak = PasswordHasherPool::new(SMALL, 2).unwrap();
        let stored = weak
            .hash(Zeroizing::new("correct horse".into()))
            .await
            .unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert_eq!(
            weak.verify(Zeroizing::new("correct horse".into()), Some(stored.clone()))
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(
            weak.verify(Zeroizing::new("wrong".into()), Some(stored.clone()))
                .await
                .unwrap(),
            Verified::No
        );
        // Unknown user: always No, even for the decoy's own password (which is checked, and
        // matches: the same work as a known user's).
        let decoyed = PasswordHasherPool::with_decoy(SMALL, 2, "the decoy's own").unwrap();
        assert!(
            argon(SMALL)
                .unwrap()
                .verify_password(
                    b"the decoy's own",
                    &PasswordHash::new(&decoyed.decoy).unwrap()
                )
                .is_ok()
        );
        assert_eq!(
            decoyed
                .verify(Zeroizing::new("the decoy's own".into()), None)
                .await
                .unwrap(),
            Verified::No
        );
        // Raised parameters: the correct password yields a stronger hash to store.
        let stronger = HashParams {
            iterations: 2,
            ..SMALL
        };
        let strong = PasswordHasherPool::new(stronger, 2).unwrap();
        assert_eq!(
            strong
                .verify(Zeroizing::new("correct horse".into()), Some(stored))
                .await
                .unwrap(),
            Verified::YesWeak
        );
        let upgraded = strong
            .hash(Zeroizing::new("correct horse".into()))
            .await
            .unwrap();
        assert!(upgraded.contains("t=2"));
    }

    /// The hash runs at the lowest priority, on a thread other than the caller's, and the
    /// caller's own priority is untouched.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_at_lowest_priority() {
        use rustix::{process::getpriority_process, thread::gettid};
        let caller = gettid();
        let before = getpriority_process(Some(caller)).unwrap();
        let (tid, nice) = on_hash_thread(
            Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap(),
            || Ok((gettid(), getpriority_process(Some(gettid())).unwrap())),
        )
        .await
        .unwrap();
        assert_ne!(tid, caller);
        assert_eq!(nice, HASH_NICENESS);
        assert_eq!(getpriority_process(Some(caller)).unwrap(), before);
    }
}
