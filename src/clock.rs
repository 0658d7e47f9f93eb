//! Time, as tipbox records it: whole seconds since the Unix epoch, and rounding to the
//! configured granularity (`privacy.time_granularity_seconds`) for every time that refers to a
//! tip, so that stored times cannot narrow down when a source was active.
//!
//! The bottom floor of the crate: it uses nothing else of tipbox.

/// Now, in whole seconds since the Unix epoch (0 if the clock is before it).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Rounds a time down to the configured granularity.
pub fn coarsen(time: i64, granularity: u64) -> i64 {
    let g = granularity.max(1) as i64;
    time - time.rem_euclid(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarsening_rounds_down_to_the_granularity() {
        assert_eq!(coarsen(7199, 3600), 3600);
        assert_eq!(coarsen(7200, 3600), 7200);
        assert_eq!(coarsen(-1, 3600), -3600);
        assert_eq!(coarsen(5, 0), 5);
    }
}
