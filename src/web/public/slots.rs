//! Submission slots: how many uploads are received at once (`limits.max_concurrent_submissions`,
//! bounding the memory and sealing work they hold), and who gets the next free one.
//!
//! A plain semaphore serves first come, first served: a flood that keeps the queue full would
//! make every genuine source wait behind it. Here:
//! - a free slot goes to the waiter whose client weighs least *now* (`Ledger::weight`: recent
//!   use, and much more for uploads already in progress) — read when the slot is given, not
//!   when the waiter arrived, since a flooder's fresh circuit is light only until it floods;
//! - when a light waiter (a source that holds nothing) arrives and every slot is taken, the
//!   slowest upload holding one — under `PREEMPT_RATE` times the minimum rate over the last
//!   `PREEMPT_SPAN` — is ended at once, and its slot goes to the waiter: a trickling flood
//!   cannot make sources wait for its uploads' windows to run out;
//! - the queue is bounded (`QUEUE_PER_SLOT` per slot); when it is full, a newcomer lighter
//!   than the heaviest waiter takes that waiter's place, and the heaviest is answered "busy";
//! - while anyone waits, the slots are *contended*, and slow uploads are cut off sooner
//!   (`transport::body`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::web::transport::body::SharedBody;
use crate::web::transport::client::Client;
use crate::web::transport::ledger::{LIGHT, Ledger};

/// Waiters allowed per slot before the heaviest are turned away.
const QUEUE_PER_SLOT: usize = 8;
/// How far back a holder's rate is read when a light waiter may take its slot.
const PREEMPT_SPAN: Duration = Duration::from_secs(2);
/// A holder sending less than this many times the minimum upload rate over `PREEMPT_SPAN`
/// gives its slot to a light waiter.
const PREEMPT_RATE: u64 = 8;
/// The least time a holder is judged over (a slot given a moment ago has had no chance yet).
const PREEMPT_AFTER: Duration = Duration::from_millis(500);
/// How often a light waiter looks again for a slow holder to take the slot of.
const PREEMPT_EVERY: Duration = Duration::from_secs(1);

struct Waiter {
    client: Client,
    seq: u64,
    body: SharedBody,
    /// The slot itself is sent: if the waiter is gone before it receives it, dropping the
    /// unreceived slot gives it back, so no grant is ever lost.
    grant: oneshot::Sender<Slot>,
}

struct State {
    free: usize,
    waiting: Vec<Waiter>,
    /// The uploads holding slots, by slot id: the ones a light waiter may preempt.
    holders: Vec<(u64, SharedBody)>,
    next_seq: u64,
}

pub struct Slots {
    state: Mutex<State>,
    /// How many wait, kept beside the state so that `contended` never takes its lock: it is
    /// asked by upload bodies while they hold their own lock, which `preempt_slowest` takes
    /// while holding the state's (the other order would deadlock).
    waiting: AtomicUsize,
    capacity: usize,
    ledger: Arc<Ledger>,
    /// `limits.min_upload_bytes_per_second` (0: nothing is preempted).
    min_rate: u64,
}

/// A slot held; given to the next waiter (or freed) when dropped.
pub struct Slot {
    /// `None` once handed over inside `release` (which holds the lock a drop would take).
    slots: Option<Arc<Slots>>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release(self.id);
        }
    }
}

impl Slots {
    pub fn new(capacity: usize, ledger: Arc<Ledger>, min_rate: u64) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                free: capacity,
                waiting: Vec::new(),
                holders: Vec::new(),
                next_seq: 0,
            }),
            waiting: AtomicUsize::new(0),
            capacity,
            ledger,
            min_rate,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes how many wait, after a change to the queue (under the state's lock).
    fn count_waiting(&self, state: &State) {
        self.waiting.store(state.waiting.len(), Ordering::Relaxed);
    }

    /// A slot for `body`, held by the upload of `client`.
    fn hold(self: &Arc<Self>, state: &mut State, body: SharedBody) -> Slot {
        let id = state.next_seq;
        state.next_seq += 1;
        state.holders.push((id, body));
        Slot {
            slots: Some(Arc::clone(self)),
            id,
        }
    }

    /// Waits at most `wait` for a slot for the upload `body` of `client`. `None`: no slot in
    /// time, or turned away for a lighter newcomer.
    pub async fn acquire(
        self: &Arc<Self>,
        client: Client,
        body: &SharedBody,
        wait: Duration,
    ) -> Option<Slot> {
        let weight = self.ledger.weight(client);
        let (seq, granted) = {
            let mut state = self.state();
            // Waiters whose request has gone away are no use to anyone.
            state.waiting.retain(|w| !w.grant.is_closed());
            self.count_waiting(&state);
            if state.free > 0 && state.waiting.is_empty() {
                state.free -= 1;
                return Some(self.hold(&mut state, body.clone()));
            }
            if state.waiting.len() >= self.capacity * QUEUE_PER_SLOT {
                let heaviest = state
                    .waiting
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (i, self.ledger.weight(w.client)))
                    .max_by(|a, b| a.1.total_cmp(&b.1))?;
                if heaviest.1 <= weight {
                    return None;
                }
                // Dropping its sender tells the heaviest waiter it was turned away.
                state.waiting.swap_remove(heaviest.0);
                self.count_waiting(&state);
            }
            if weight < LIGHT {
                self.preempt_slowest(&mut state);
            }
            let (grant, granted) = oneshot::channel();
            let seq = state.next_seq;
            state.next_seq += 1;
            state.waiting.push(Waiter {
                client,
                seq,
                body: body.clone(),
                grant,
            });
            self.count_waiting(&state);
            (seq, granted)
        };
        let mut granted = granted;
        let deadline = tokio::time::Instant::now() + wait;
        // A light waiter looks again every second for a slow holder to take the slot of: the
        // holders it found may have been too new to judge when it arrived.
        let waited = loop {
            let next = (tokio::time::Instant::now() + PREEMPT_EVERY).min(deadline);
            match tokio::time::timeout_at(next, &mut granted).await {
                Ok(result) => break Some(result),
                Err(_) if next >= deadline => break None,
                Err(_) if weight < LIGHT => self.preempt_slowest(&mut self.state()),
                Err(_) => {}
            }
        };
        match waited {
            Some(Ok(slot)) => Some(slot),
            Some(Err(_)) => None,
            None => {
                // Grants are made under the lock: holding it, either we are still waiting
                // (leave), or a slot was granted just now (keep it).
                let mut state = self.state();
                if let Some(at) = state.waiting.iter().position(|w| w.seq == seq) {
                    state.waiting.swap_remove(at);
                    self.count_waiting(&state);
                    return None;
                }
                drop(state);
                granted.try_recv().ok()
            }
        }
    }

    /// Ends the slowest upload holding a slot, if it is slow enough to give way.
    fn preempt_slowest(&self, state: &mut State) {
        if self.min_rate == 0 {
            return;
        }
        let rate = self.min_rate.saturating_mul(PREEMPT_RATE) as f64;
        // The slowest by bytes a second, among those judged long enough and below the rate.
        let slowest = state
            .holders
            .iter()
            .enumerate()
            .filter_map(|(i, (_, body))| {
                let (bytes, over) = body.received_over(PREEMPT_SPAN)?;
                (over >= PREEMPT_AFTER).then(|| (i, bytes as f64 / over.as_secs_f64()))
            })
            .filter(|(_, per_second)| *per_second < rate)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((at, _)) = slowest {
            // Out of the holders at once, so that it is not chosen twice; its slot comes back
            // when its upload has ended.
            let (_, body) = state.holders.swap_remove(at);
            body.preempt();
        }
    }

    /// Whether anyone is waiting for a slot. Never takes the state's lock (see `waiting`).
    pub fn contended(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    fn release(self: Arc<Self>, id: u64) {
        let mut state = self.state();
        state.holders.retain(|(held, _)| *held != id);
        while !state.waiting.is_empty() {
            let lightest = state
                .waiting
                .iter()
                .enumerate()
                .map(|(i, w)| (i, self.ledger.weight(w.client), w.seq))
                .min_by(|a, b| a.1.total_cmp(&b.1).then(a.2.cmp(&b.2)))
                .map(|(i, _, _)| i)
                .expect("not empty");
            let waiter = state.waiting.swap_remove(lightest);
            self.count_waiting(&state);
            let slot = self.hold(&mut state, waiter.body);
            match waiter.grant.send(slot) {
                Ok(()) => return,
                // Gone: disarm the slot it did not take (dropping it armed would take this
                // lock again), forget it, and try the next waiter.
                Err(mut slot) => {
                    slot.slots = None;
                    let id = slot.id;
                    state.holders.retain(|(held, _)| *held != id);
                }
            }
        }
        state.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateLimits;

    fn body() -> SharedBody {
        SharedBody::new(
            axum::body::Body::empty(),
            0,
            Duration::from_secs(30),
            Arc::new(|| false),
        )
    }

    fn slots(capacity: usize) -> (Arc<Slots>, Arc<Ledger>) {
        let ledger = Ledger::new(&RateLimits::default());
        (Slots::new(capacity, Arc::clone(&ledger), 0), ledger)
    }

    #[tokio::test]
    async fn the_lightest_waiter_now_gets_the_next_slot() {
        let (slots, ledger) = slots(1);
        let wait = Duration::from_secs(2);
        let held = slots
            .acquire(Client::Circuit(0), &body(), wait)
            .await
            .unwrap();
        // The flooder arrives first, as light as anyone ...
        let flooder = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move {
                slots
                    .acquire(Client::Circuit(1), &body(), Duration::from_millis(300))
                    .await
                    .is_some()
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let source = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move {
                slots
                    .acquire(Client::Circuit(2), &body(), wait)
                    .await
                    .map(drop)
                    .is_some()
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(slots.contended());
        // ... and then floods: by the time a slot frees, it weighs more.
        ledger.charge(Client::Circuit(1), 100.0);
        drop(held);
        assert!(source.await.unwrap(), "the source was served first");
        let _ = flooder.await.unwrap();
        assert!(
            slots
                .acquire(Client::Circuit(3), &body(), wait)
                .await
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_full_queue_turns_the_heaviest_away() {
        let (slots, ledger) = slots(1);
        let _held = slots
            .acquire(Client::Circuit(0), &body(), Duration::from_secs(1))
            .await
            .unwrap();
        let mut heavy = Vec::new();
        for n in 0..QUEUE_PER_SLOT {
            let client = Client::Circuit(100 + n as u32);
            ledger.charge(client, 50.0);
            let slots = Arc::clone(&slots);
            heavy.push(tokio::spawn(async move {
                slots
                    .acquire(client, &body(), Duration::from_secs(5))
                    .await
                    .is_some()
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Heavier than every waiter: turned away at once.
        ledger.charge(Client::Circuit(9), 60.0);
        assert!(
            slots
                .acquire(Client::Circuit(9), &body(), Duration::from_secs(5))
                .await
                .is_none()
        );
        // Lighter: takes a heavy waiter's place, which is answered at once.
        let light = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move {
                slots
                    .acquire(Client::Circuit(1), &body(), Duration::from_millis(200))
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
