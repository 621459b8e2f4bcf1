//! The host services the daemon gives each instance it starts, in its
//! own process or (served from here) in a worker.

use super::Supervisor;
use crate::host::{ConfigValues, Denial, HostServices};
use crate::run::LogBook;
use std::sync::Arc;

impl Supervisor {
    /// The services of one instance of `id`, whose log is `book`.
    /// `config` is the instance's runtime configuration (config.rs).
    pub(super) fn services_for(&self, id: &str, book: &LogBook, config: ConfigValues) -> HostServices {
        let module = id.to_owned();
        let notes = book.clone();
        HostServices {
            denials: Some(Arc::new(move |denial: Denial| {
                let denial = denial.bounded();
                log::warn!("{module}: {denial}");
                notes.note(&denial.to_string());
            })),
            config,
            logs: Some(book.clone()),
        }
    }
}
