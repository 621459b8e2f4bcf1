//! `arcella-mqtt` (work in progress, issue 6): the MQTT device agent and
//! operator client. Today: the versioned topic layout of docs/mqtt.md.

pub mod agent;
pub mod topics;
