//! The daemon as users run it: a real process, the real CLI, a real socket.

mod audit;
mod boards;
mod bombs;
mod cli;
mod config;
mod connections;
mod durability;
#[cfg(target_arch = "x86_64")]
mod escape;
mod fairness;
#[cfg(feature = "mqtt")]
mod fleet;
#[cfg(feature = "mqtt")]
mod fleet_housekeeping;
#[cfg(feature = "mqtt")]
mod fleet_trust;
mod full_disk;
mod guest_output;
pub(crate) mod harness;
mod housekeeping;
#[cfg(feature = "http")]
mod http;
mod idle;
#[cfg(target_arch = "x86_64")]
mod inject;
mod install_limits;
mod keyvalue;
mod lifecycle;
mod messaging;
#[cfg(feature = "mqtt")]
mod mqtt;
mod network;
mod notify;
#[cfg(feature = "compiler")]
mod progress;
mod protocol;
#[cfg(feature = "mqtt")]
mod rollout;
mod sensor_gateway;
mod shutdown;
mod telemetry;
mod templates;
mod thermostat;
mod typed;
mod undumpable;
mod updates;
mod variants;
#[cfg(not(feature = "mqtt"))]
mod without_mqtt;
mod workers;
