//! Submission slots: how many uploads are received at once (`limits.max_concurrent_submissions`,
//! bounding the memory and sealing work they hold), and who gets the next free one.
//!
//! A plain semaphore serves first come, first served: a flood that keeps the queue full would
//! make every genuine source wait behind it. Here a free slot goes to the waiter whose client
//! has used the least recently (`transport::ledger`), so a source on a fresh circuit goes ahead
//! of a flooder's hundredth upload. The queue is bounded (`QUEUE_PER_SLOT` per slot); when it is
//! full, a newcomer lighter than the heaviest waiter takes that waiter's place, and the heaviest
//! is answered "busy". While anyone waits, the slots are *contended*, and uploads that are too
//! slow are cut off sooner (`transport::body`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

/// Waiters allowed per slot before the heaviest are turned away.
const QUEUE_PER_SLOT: usize = 8;

struct Waiter {
    weight: f64,
    seq: u64,
    /// The slot itself is sent: if the waiter is gone before it receives it, dropping the
    /// unreceived slot gives it back, so no grant is ever lost.
    grant: oneshot::Sender<Slot>,
}

struct State {
    free: usize,
    waiting: Vec<Waiter>,
    next_seq: u64,
}

pub struct Slots {
    state: Mutex<State>,
    capacity: usize,
}

/// A slot held; given to the next waiter (or freed) when dropped.
pub struct Slot {
    /// `None` once handed over inside `release` (which holds the lock a drop would take).
    slots: Option<Arc<Slots>>,
}

impl Slot {
    fn of(slots: &Arc<Slots>) -> Self {
        Self {
            slots: Some(Arc::clone(slots)),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release();
        }
    }
}

impl Slots {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                free: capacity,
                waiting: Vec::new(),
                next_seq: 0,
            }),
            capacity,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits at most `wait` for a slot; `weight` is the client's recent use (lighter first).
    /// `None`: no slot in time, or turned away for a lighter newcomer.
    pub async fn acquire(self: &Arc<Self>, weight: f64, wait: Duration) -> Option<Slot> {
        let (seq, granted) = {
            let mut state = self.state();
            // Waiters whose request has gone away are no use to anyone.
            state.waiting.retain(|w| !w.grant.is_closed());
            if state.free > 0 && state.waiting.is_empty() {
                state.free -= 1;
                return Some(Slot::of(self));
            }
            if state.waiting.len() >= self.capacity * QUEUE_PER_SLOT {
                let heaviest = state
                    .waiting
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.weight.total_cmp(&b.1.weight))
                    .map(|(i, w)| (i, w.weight))?;
                if heaviest.1 <= weight {
                    return None;
                }
                // Dropping its sender tells the heaviest waiter it was turned away.
                state.waiting.swap_remove(heaviest.0);
            }
            let (grant, granted) = oneshot::channel();
            let seq = state.next_seq;
            state.next_seq += 1;
            state.waiting.push(Waiter { weight, seq, grant });
            (seq, granted)
        };
        let mut granted = granted;
        match tokio::time::timeout(wait, &mut granted).await {
            Ok(Ok(slot)) => Some(slot),
            Ok(Err(_)) => None,
            Err(_) => {
                // Grants are made under the lock: holding it, either we are still waiting
                // (leave), or a slot was granted just now (keep it).
                let mut state = self.state();
                if let Some(at) = state.waiting.iter().position(|w| w.seq == seq) {
                    state.waiting.swap_remove(at);
                    return None;
                }
                drop(state);
                granted.try_recv().ok()
            }
        }
    }

    /// Whether anyone (still there) is waiting for a slot.
    pub fn contended(&self) -> bool {
        self.state().waiting.iter().any(|w| !w.grant.is_closed())
    }

    fn release(self: Arc<Self>) {
        let mut state = self.state();
        while !state.waiting.is_empty() {
            let lightest = state
                .waiting
                .iter()
                .enumerate()
                .min_by(|a, b| {
                    a.1.weight
                        .total_cmp(&b.1.weight)
                        .then(a.1.seq.cmp(&b.1.seq))
                })
                .map(|(i, _)| i)
                .expect("not empty");
            let waiter = state.waiting.swap_remove(lightest);
            match waiter.grant.send(Slot::of(&self)) {
                Ok(()) => return,
                // Gone: disarm the slot it did not take (dropping it armed would take this
                // lock again), and try the next waiter.
                Err(mut slot) => slot.slots = None,
            }
        }
        state.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_lightest_waiter_gets_the_next_slot() {
        let slots = Slots::new(1);
        let held = slots.acquire(0.0, Duration::from_secs(1)).await.unwrap();
        let heavy = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move {
                slots
                    .acquire(100.0, Duration::from_millis(300))
                    .await
                    .is_some()
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let light = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move {
                slots
                    .acquire(1.0, Duration::from_secs(2))
                    .await
                    .map(drop)
                    .is_some()
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(slots.contended());
        drop(held);
        assert!(light.await.unwrap(), "the light waiter was served");
        // The heavy one came first but waited; it timed out (the light one held the slot
        // only briefly, then the heavy one may have got it: either is fine, nothing leaks).
        let _ = heavy.await.unwrap();
        assert!(slots.acquire(0.0, Duration::from_secs(1)).await.is_some());
    }

    #[tokio::test]
    async fn a_full_queue_turns_the_heaviest_away() {
        let slots = Slots::new(1);
        let _held = slots.acquire(0.0, Duration::from_secs(1)).await.unwrap();
        let mut heavy = Vec::new();
        for _ in 0..QUEUE_PER_SLOT {
            let slots = Arc::clone(&slots);
            heavy.push(tokio::spawn(async move {
                slots.acquire(50.0, Duration::from_secs(5)).await.is_some()
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Heavier than every waiter: turned away at once.
        assert!(slots.acquire(60.0, Duration::from_secs(5)).await.is_none());
        // Lighter: takes a heavy waiter's place, which is answered at once.
        let light = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move {
                slots
                    .acquire(1.0, Duration::from_millis(200))
                    .await
                    .is_some()
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut turned_away = 0;
        for h in heavy {
            if h.is_finished() {
                turned_away += usize::from(!h.await.unwrap());
            }
        }
        assert_eq!(turned_away, 1);
        assert!(!light.await.unwrap(), "no slot freed in time");
    }
}
