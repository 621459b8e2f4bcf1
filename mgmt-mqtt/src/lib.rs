//! `arcella-mqtt` (work in progress, issue 6): the MQTT device agent and
//! operator client. Today: the versioned topic layout of docs/mqtt.md, the
//! broker connection settings (URL, credentials, TLS) and the agent.

pub mod agent;
pub mod broker;
mod tls;
pub mod topics;
