//! The device's message bus: lives in the daemon, one per daemon. A
//! publish goes to the queue of every subscription whose filters match its
//! topic. Each queue is bounded; when it is full the oldest message is
//! dropped to make room (a handler that falls behind sees the newest
//! readings, and the daemon's memory stays bounded), and the drop is
//! counted in the owner's [`MessagingStats`], which `status` shows.
//!
//! Subscribers are modules (their handler, fed from the queue one message
//! at a time) and the MQTT bridge's outgoing side. A message that came in
//! through the bridge never goes back out through it.

use super::topic;
use crate::protocol::messaging::{BusMessage, MessagingStats};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// The queue size when a deployment names none.
pub const DEFAULT_QUEUE: usize = 64;
/// The largest queue a subscription may ask for.
pub const MAX_QUEUE: usize = 4096;

/// Who published a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A module, by id.
    Module(String),
    /// The MQTT bridge (a message from the broker).
    Bridge,
}

/// A module's (or the bridge's) counters; they outlive its instances.
#[derive(Debug, Default)]
pub struct Counters {
    published: AtomicU64,
    denied: AtomicU64,
    received: AtomicU64,
    handled: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub fn published(&self) {
        Self::bump(&self.published);
    }
    pub fn denied(&self) {
        Self::bump(&self.denied);
    }
    /// Messages dropped so far.
    pub fn drops(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

struct Queue {
    owner: String,
    filters: Vec<String>,
    /// Whether messages the bridge brought in are taken (not by the
    /// bridge's own outgoing side: that would loop).
    takes_bridged: bool,
    capacity: usize,
    items: Mutex<VecDeque<BusMessage>>,
    /// Rung (without blocking) on every push; `next` waits on it.
    bell: (async_channel::Sender<()>, async_channel::Receiver<()>),
    counters: Arc<Counters>,
    closed: AtomicBool,
}

impl Queue {
    fn items(&self) -> MutexGuard<'_, VecDeque<BusMessage>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, message: BusMessage) {
        {
            let mut items = self.items();
            if items.len() >= self.capacity {
                items.pop_front();
                Counters::bump(&self.counters.dropped);
            }
            items.push_back(message);
        }
        Counters::bump(&self.counters.received);
        let _ = self.bell.0.try_send(());
    }
}

#[derive(Default)]
struct Inner {
    queues: Vec<Arc<Queue>>,
    counters: HashMap<String, Arc<Counters>>,
}

/// The bus. Cheap to share (`Arc`).
#[derive(Default)]
pub struct Bus {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").finish_non_exhaustive()
    }
}

impl Bus {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The counters of `owner` (a module id, or `bridge`), made on first use.
    pub fn counters(&self, owner: &str) -> Arc<Counters> {
        self.inner().counters.entry(owner.to_owned()).or_default().clone()
    }

    /// Subscribes `owner` to `filters` (checked by the caller) with a
    /// queue of `capacity` messages; dropping the subscription ends it.
    pub fn subscribe(self: &Arc<Self>, owner: &str, filters: Vec<String>, capacity: usize) -> Subscription {
        self.subscribe_with(owner, filters, capacity, true)
    }

    /// The bridge's outgoing side: like [`Bus::subscribe`], but never
    /// given a message the bridge itself brought in.
    pub fn subscribe_bridge(self: &Arc<Self>, filters: Vec<String>, capacity: usize) -> Subscription {
        self.subscribe_with("bridge", filters, capacity, false)
    }

    fn subscribe_with(
        self: &Arc<Self>,
        owner: &str,
        filters: Vec<String>,
        capacity: usize,
        takes_bridged: bool,
    ) -> Subscription {
        let queue = Arc::new(Queue {
            owner: owner.to_owned(),
            filters,
            takes_bridged,
            capacity: capacity.clamp(1, MAX_QUEUE),
            items: Mutex::new(VecDeque::new()),
            bell: async_channel::bounded(1),
            counters: self.counters(owner),
            closed: AtomicBool::new(false),
        });
        self.inner().queues.push(queue.clone());
        Subscription {
            queue,
            bus: Arc::downgrade(self),
        }
    }

    /// Puts `message` in every matching queue; returns how many. The
    /// publisher's grant was checked by the caller.
    pub fn publish(&self, origin: &Origin, message: &BusMessage) -> usize {
        let inner = self.inner();
        let mut reached = 0;
        for queue in &inner.queues {
            if *origin == Origin::Bridge && !queue.takes_bridged {
                continue;
            }
            if topic::any_matches(&queue.filters, &message.topic) {
                queue.push(message.clone());
                reached += 1;
            }
        }
        reached
    }

    /// What `status` shows for `owner`; `None` if it never used the bus.
    pub fn stats(&self, owner: &str) -> Option<MessagingStats> {
        let inner = self.inner();
        let counters = inner.counters.get(owner)?;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (queued, capacity) = inner
            .queues
            .iter()
            .filter(|q| q.owner == owner)
            .fold((0, 0), |(n, c), q| (n + q.items().len() as u64, c + q.capacity as u64));
        Some(MessagingStats {
            published: load(&counters.published),
            denied: load(&counters.denied),
            received: load(&counters.received),
            handled: load(&counters.handled),
            failed: load(&counters.failed),
            dropped: load(&counters.dropped),
            queued,
            capacity,
        })
    }

    /// Subscriptions now (tests).
    pub fn subscriptions(&self) -> usize {
        self.inner().queues.len()
    }
}

/// One subscriber's queue. Dropping it unsubscribes.
pub struct Subscription {
    queue: Arc<Queue>,
    bus: Weak<Bus>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("owner", &self.queue.owner)
            .field("filters", &self.queue.filters)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The oldest waiting message, waiting for one if none is.
    pub async fn next(&self) -> BusMessage {
        loop {
            if let Some(message) = self.try_next() {
                return message;
            }
            if self.queue.bell.1.recv().await.is_err() || self.queue.closed.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The oldest waiting message, if any.
    pub fn try_next(&self) -> Option<BusMessage> {
        self.queue.items().pop_front()
    }

    /// Puts a message taken with [`Self::next`] back at the front (it
    /// could not be passed on: the bridge's broker went away).
    pub fn put_back(&self, message: BusMessage) {
        let mut items = self.queue.items();
        if items.len() >= self.queue.capacity {
            Counters::bump(&self.queue.counters.dropped);
            return;
        }
        items.push_front(message);
    }

    /// The handler finished a message.
    pub fn handled(&self, outcome: &Result<(), String>) {
        Counters::bump(&self.queue.counters.handled);
        if outcome.is_err() {
            Counters::bump(&self.queue.counters.failed);
        }
    }

    /// The owner's counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.queue.counters
    }

    /// Messages waiting now.
    pub fn len(&self) -> usize {
        self.queue.items().len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.queue.closed.store(true, Ordering::Relaxed);
        if let Some(bus) = self.bus.upgrade() {
            bus.inner().queues.retain(|q| !Arc::ptr_eq(q, &self.queue));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, n: u8) -> BusMessage {
        BusMessage {
            topic: topic.into(),
            data: vec![n],
            content_type: None,
            metadata: Vec::new(),
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let bus = Bus::new();
        let sub = bus.subscribe("thermo", vec!["cmd/thermo/#".into()], 3);
        let other = bus.subscribe("other", vec!["sensors/+/temp".into()], 3);
        for n in 0..10 {
            assert_eq!(
                bus.publish(&Origin::Module("p".into()), &message("cmd/thermo/set", n)),
                1
            );
        }
        let stats = bus.stats("thermo").unwrap();
        assert_eq!(
            (stats.received, stats.dropped, stats.queued, stats.capacity),
            (10, 7, 3, 3)
        );
        let kept: Vec<u8> = std::iter::from_fn(|| sub.try_next()).map(|m| m.data[0]).collect();
        assert_eq!(kept, vec![7, 8, 9], "the newest are kept");
        assert!(other.is_empty());
        drop(sub);
        assert_eq!(bus.subscriptions(), 1);
        assert_eq!(
            bus.stats("thermo").unwrap().dropped,
            7,
            "counters outlive the subscription"
        );
    }

    #[test]
    fn bridged_messages_do_not_go_back_out() {
        let bus = Bus::new();
        let out = bus.subscribe_bridge(vec!["#".into()], 8);
        let module = bus.subscribe("m", vec!["#".into()], 8);
        bus.publish(&Origin::Bridge, &message("z2m/plug", 1));
        assert!(out.is_empty());
        assert_eq!(module.len(), 1);
        bus.publish(&Origin::Module("m".into()), &message("home/x", 2));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn next_waits_for_a_message() {
        let bus = Bus::new();
        let sub = bus.subscribe("m", vec!["a".into()], 8);
        smol::block_on(async {
            let waiter = async { sub.next().await };
            let publisher = async {
                smol::Timer::after(std::time::Duration::from_millis(20)).await;
                bus.publish(&Origin::Module("p".into()), &message("a", 5));
            };
            let (got, ()) = smol::future::zip(waiter, publisher).await;
            assert_eq!(got.data, vec![5]);
        });
    }
}
