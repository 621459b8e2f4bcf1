//! `logs --follow` asks to follow before it asks for the lines kept, so
//! no line falls between the two; a line logged in between comes in both.
//! [`Overlap`] lets each such line through once.

use arcella_core::protocol::LogLine;

/// The kept lines that may come again as live events: those logged since
/// just before the follow was asked for, in log order.
pub struct Overlap {
    pending: Vec<LogLine>,
}

impl Overlap {
    /// `kept` are the lines shown from the daemon's history; `since_ms`
    /// is the clock just before the follow was asked for (the daemon is on
    /// the same host, so on the same clock).
    pub fn new(kept: &[LogLine], since_ms: u64) -> Self {
        let pending = kept.iter().filter(|l| l.at_ms >= since_ms).cloned().collect();
        Self { pending }
    }

    /// Whether a live line was already shown from the history. Live lines
    /// come in log order, so once one is new, none after it can repeat.
    pub fn repeats(&mut self, live: &LogLine) -> bool {
        match self.pending.iter().position(|kept| kept == live) {
            Some(at) => {
                self.pending.drain(..=at);
                true
            }
            None => {
                self.pending.clear();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcella_core::protocol::LogStream;

    fn line(at_ms: u64, text: &str) -> LogLine {
        LogLine {
            module: "m".into(),
            stream: LogStream::Stdout,
            at_ms,
            text: text.into(),
        }
    }

    #[test]
    fn lines_in_both_the_history_and_the_stream_are_shown_once() {
        let kept = [line(5, "old"), line(10, "count 1"), line(11, "count 2")];
        let mut overlap = Overlap::new(&kept, 9);
        // The follower was registered after "count 1": only "count 2" repeats.
        assert!(overlap.repeats(&line(11, "count 2")));
        assert!(!overlap.repeats(&line(12, "count 3")));
    }

    #[test]
    fn once_a_new_line_comes_nothing_is_dropped_even_if_it_looks_the_same() {
        let kept = [line(10, "tick")];
        let mut overlap = Overlap::new(&kept, 10);
        assert!(!overlap.repeats(&line(11, "tick")));
        assert!(!overlap.repeats(&line(10, "tick")), "a new line ended the overlap");
    }

    #[test]
    fn lines_kept_before_the_follow_was_asked_for_never_hide_live_ones() {
        let kept = [line(3, "same")];
        let mut overlap = Overlap::new(&kept, 4);
        assert!(!overlap.repeats(&line(3, "same")));
    }
}
