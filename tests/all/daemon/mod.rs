//! The daemon as users run it: a real process, the real CLI, a real socket.

mod boards;
mod durability;
mod fairness;
mod fleet;
mod fleet_housekeeping;
mod fleet_trust;
mod harness;
mod housekeeping;
mod lifecycle;
mod mqtt;
mod notify;
mod protocol;
mod shutdown;
mod updates;
mod workers;
