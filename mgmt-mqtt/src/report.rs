//! The reporter thread: publishes the device's state (retained) now and
//! after every state change, its module events, and — with the JSON
//! mirror on — the same as JSON, the telemetry at its interval and the
//! Home Assistant discovery configs, until the daemon goes.

use crate::device::Device;
use crate::json::discovery::Discovery;
use crate::json::views::{EventView, StateView, TelemetryView};
use crate::json::{self, JsonSettings};
use crate::topics::DeviceTopics;
use crate::wire;
use arcella_core::protocol::Event;
use rumqttc::{Client, QoS};
use std::sync::Arc;
use std::time::Instant;

pub struct Reporter {
    client: Client,
    topics: DeviceTopics,
    device: Arc<dyn Device>,
    group: Option<String>,
    json: Option<JsonSettings>,
    discovery: Option<Discovery>,
}

impl Reporter {
    pub fn new(
        client: Client,
        topics: DeviceTopics,
        device: Arc<dyn Device>,
        group: Option<String>,
        json: Option<JsonSettings>,
    ) -> Self {
        let prefix = json.as_ref().and_then(|j| j.home_assistant.as_deref());
        let discovery = Discovery::start(&client, prefix, topics.device(), device.state_dir());
        Self {
            client,
            topics,
            device,
            group,
            json,
            discovery,
        }
    }

    /// Runs until the event channel closes (the daemon is going). Waits
    /// with no timer when telemetry is off: an idle daemon does not wake.
    pub fn run(mut self, events: &async_channel::Receiver<Event>) {
        let interval = self.json.as_ref().and_then(|j| j.telemetry);
        self.publish_state();
        self.publish_telemetry();
        let mut next = interval.map(|i| Instant::now() + i);
        loop {
            let event = match (next, interval) {
                (Some(at), Some(interval)) => match wait(events, at) {
                    Wake::Event(event) => event,
                    Wake::Closed => return,
                    Wake::Due => {
                        self.publish_telemetry();
                        // Late (a suspended board): the next one a whole
                        // interval from now, not a burst to catch up.
                        let (due, now) = (at + interval, Instant::now());
                        next = Some(if due < now { now + interval } else { due });
                        continue;
                    }
                },
                _ => match events.recv_blocking() {
                    Ok(event) => event,
                    Err(_) => return,
                },
            };
            self.publish_event(&event);
        }
    }

    fn publish_state(&mut self) {
        let mut report = self.device.report();
        report.group = self.group.clone();
        if let Ok(state) = wire::encode(&report) {
            let _ = self.client.publish(self.topics.state(), QoS::AtLeastOnce, true, state);
        }
        if self.json.is_some() {
            let view = StateView::new(self.topics.device(), &report, json::now_secs());
            json::publish(&self.client, &self.topics, json::STATE, &view);
        }
        if let Some(discovery) = &mut self.discovery {
            discovery.announce(&self.client, &self.topics, &report);
        }
    }

    fn publish_event(&mut self, event: &Event) {
        if let Ok(bytes) = wire::encode(event) {
            let _ = self.client.publish(self.topics.events(), QoS::AtMostOnce, false, bytes);
        }
        if self.json.is_some() {
            let view = EventView::new(self.topics.device(), event, arcella_core::protocol::now_ms());
            json::publish(&self.client, &self.topics, json::EVENTS, &view);
        }
        if matches!(event, Event::State { .. }) {
            self.publish_state();
        }
    }

    fn publish_telemetry(&self) {
        if self.json.as_ref().and_then(|j| j.telemetry).is_none() {
            return;
        }
        if let Some(reading) = self.device.telemetry() {
            let view = TelemetryView::new(self.topics.device(), &reading);
            json::publish(&self.client, &self.topics, json::TELEMETRY, &view);
        }
    }
}

enum Wake {
    Event(Event),
    Closed,
    Due,
}

/// The next event, or `Due` at `at`.
fn wait(events: &async_channel::Receiver<Event>, at: Instant) -> Wake {
    smol::block_on(smol::future::or(
        async {
            match events.recv().await {
                Ok(event) => Wake::Event(event),
                Err(_) => Wake::Closed,
            }
        },
        async {
            smol::Timer::at(at).await;
            Wake::Due
        },
    ))
}
