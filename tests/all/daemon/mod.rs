//! The daemon as users run it: a real process, the real CLI, a real socket.

mod boards;
mod bombs;
mod connections;
mod durability;
mod fairness;
mod fleet;
mod fleet_housekeeping;
mod fleet_trust;
mod harness;
mod housekeeping;
mod install_limits;
mod lifecycle;
mod mqtt;
mod notify;
mod protocol;
mod shutdown;
mod undumpable;
mod updates;
mod variants;
mod workers;
