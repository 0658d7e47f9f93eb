//! The free-disk guard: uploads are refused before the data directory runs short, not half way
//! through — and not only when they start.
//!
//! Checking free space once at the start let many uploads that started together each see room,
//! then fill the disk together. Here an upload sets aside room ahead of what it writes — the
//! size it declares, but at most `AHEAD` at a time (a declared size is only a claim: trusting
//! it whole would let a few slow uploads that declare 512 MiB each hold the disk's room) —
//! which other uploads see as taken; as its bytes arrive and are written, the room is topped
//! up, and the free space is read again every `RECHECK_BYTES`, so an upload that declared
//! nothing, or a disk filled by something else, ends with "disk full" instead of a failed
//! write.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Free space is read again after this many bytes of an upload.
const RECHECK_BYTES: u64 = 4 << 20;
/// The most room one upload sets aside ahead of what it has written.
const AHEAD: u64 = 32 << 20;

pub struct DiskGuard {
    data_dir: PathBuf,
    min_free: u64,
    /// Bytes declared by uploads in progress and not yet written.
    reserved: AtomicU64,
}

impl DiskGuard {
    pub fn new(data_dir: &Path, min_free: u64) -> Arc<Self> {
        Arc::new(Self {
            data_dir: data_dir.to_owned(),
            min_free,
            reserved: AtomicU64::new(0),
        })
    }

    /// Admits an upload that declares `declared` bytes, if its room ahead fits above the
    /// minimum free space with everything else in progress.
    pub fn admit(self: &Arc<Self>, declared: u64) -> Option<Staging> {
        if self.min_free == 0 {
            return Some(Staging::unguarded(self));
        }
        let ahead = declared.min(AHEAD);
        let reserved = self.reserved.fetch_add(ahead, Ordering::SeqCst);
        let staging = Staging {
            guard: Arc::clone(self),
            declared_left: declared,
            reserved: ahead,
            unchecked: 0,
        };
        let free = free_bytes(&self.data_dir)?;
        if free < self.min_free.saturating_add(reserved).saturating_add(ahead) {
            short(free, self.min_free);
            return None;
        }
        Some(staging)
    }
}

/// One upload's share of the disk; its reservation is given back when it is dropped.
pub struct Staging {
    guard: Arc<DiskGuard>,
    /// What the upload declared and has not written yet.
    declared_left: u64,
    reserved: u64,
    unchecked: u64,
}

impl Staging {
    fn unguarded(guard: &Arc<DiskGuard>) -> Self {
        Self {
            guard: Arc::clone(guard),
            declared_left: 0,
            reserved: 0,
            unchecked: 0,
        }
    }

    /// Counts `bytes` about to be written; `None` when the disk is now short.
    pub fn wrote(&mut self, bytes: u64) -> Option<()> {
        if self.guard.min_free == 0 {
            return Some(());
        }
        let released = bytes.min(self.reserved);
        self.reserved -= released;
        self.guard.reserved.fetch_sub(released, Ordering::SeqCst);
        self.declared_left = self.declared_left.saturating_sub(bytes);
        // Top the room ahead up again once half of it is used.
        let ahead = self.declared_left.min(AHEAD);
        if self.reserved < ahead / 2 {
            let more = ahead - self.reserved;
            self.reserved += more;
            self.guard.reserved.fetch_add(more, Ordering::SeqCst);
        }
        self.unchecked += bytes;
        if self.unchecked >= RECHECK_BYTES {
            self.unchecked = 0;
            let free = free_bytes(&self.guard.data_dir)?;
            let others = self.guard.reserved.load(Ordering::SeqCst);
            if free < self.guard.min_free.saturating_add(others) {
                short(free, self.guard.min_free);
                return None;
            }
        }
        Some(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        self.guard
            .reserved
            .fetch_sub(self.reserved, Ordering::SeqCst);
    }
}

/// The data directory's free space; `None` (refuse: fail closed) when it cannot be read.
fn free_bytes(data_dir: &Path) -> Option<u64> {
    match rustix::fs::statvfs(data_dir) {
        Ok(stat) => Some(stat.f_bavail.saturating_mul(stat.f_frsize)),
        Err(error) => {
            tracing::error!(%error, "cannot read the data directory's free space: submissions are refused");
            None
        }
    }
}

/// Logs that the disk is short, at most once a minute (a flood of refused uploads must not
/// flood the log too).
fn short(free: u64, min_free: u64) {
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(60)) {
        return;
    }
    *last = Some(std::time::Instant::now());
    tracing::error!(
        free_bytes = free,
        min_free_disk_bytes = min_free,
        "the data directory is short of space: submissions are refused until it is freed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ahead_is_set_aside_until_written() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        // Room for 2.5 times AHEAD above the minimum (give or take what others write meanwhile).
        let guard = DiskGuard::new(dir.path(), free.saturating_sub(AHEAD * 5 / 2));
        // A 500 MiB declaration sets aside AHEAD, not 500 MiB: two fit, a third does not.
        let mut first = guard.admit(500 << 20).expect("fits");
        assert_eq!(guard.reserved.load(Ordering::SeqCst), AHEAD);
        let second = guard.admit(500 << 20).expect("fits");
        assert!(guard.admit(500 << 20).is_none(), "their room is taken");
        // Writing uses the room up and tops it up again (nothing was really written here).
        first.wrote(20 << 20).unwrap();
        assert_eq!(guard.reserved.load(Ordering::SeqCst), 2 * AHEAD);
        drop(second);
        assert!(guard.admit(500 << 20).is_some());
        drop(first);
        assert_eq!(guard.reserved.load(Ordering::SeqCst), 0);
    }
}
