//! The free-disk guard: uploads are refused before the data directory runs short, not half way
//! through — and not only when they start.
//!
//! Checking free space once at the start let many uploads that started together each see room,
//! then fill the disk together. Here an upload sets aside the size it declares, which later
//! uploads see as taken; and as its bytes arrive and are written, its reservation shrinks by
//! as much (the disk's own free space now counts them), with the free space read again every
//! `RECHECK_BYTES`, so an upload that declared nothing, or a disk filled by something else,
//! ends the upload with "disk full" instead of a failed write.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Free space is read again after this many bytes of an upload.
const RECHECK_BYTES: u64 = 4 << 20;

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

    /// Admits an upload that declares `declared` bytes, if they fit above the minimum free
    /// space with everything else in progress.
    pub fn admit(self: &Arc<Self>, declared: u64) -> Option<Staging> {
        if self.min_free == 0 {
            return Some(Staging::unguarded(self));
        }
        let reserved = self.reserved.fetch_add(declared, Ordering::SeqCst);
        let staging = Staging {
            guard: Arc::clone(self),
            reserved: declared,
            unchecked: 0,
        };
        let free = free_bytes(&self.data_dir)?;
        if free
            < self
                .min_free
                .saturating_add(reserved)
                .saturating_add(declared)
        {
            short(free, self.min_free);
            return None;
        }
        Some(staging)
    }
}

/// One upload's share of the disk; its reservation is given back when it is dropped.
pub struct Staging {
    guard: Arc<DiskGuard>,
    reserved: u64,
    unchecked: u64,
}

impl Staging {
    fn unguarded(guard: &Arc<DiskGuard>) -> Self {
        Self {
            guard: Arc::clone(guard),
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

fn short(free: u64, min_free: u64) {
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
    fn declared_sizes_are_set_aside_until_written() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        // Room for about 100 MiB above the minimum.
        let guard = DiskGuard::new(dir.path(), free.saturating_sub(100 << 20));
        let mut first = guard.admit(60 << 20).expect("fits");
        assert!(
            guard.admit(60 << 20).is_none(),
            "the first one's room is taken"
        );
        first.wrote(10 << 20).unwrap();
        // Still 50 MiB set aside (nothing was really written here).
        assert!(guard.admit(60 << 20).is_none());
        drop(first);
        assert!(guard.admit(60 << 20).is_some());
        assert_eq!(guard.reserved.load(Ordering::SeqCst), 0);
    }
}
