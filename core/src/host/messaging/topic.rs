//! Topics and topic filters, in MQTT's syntax: levels separated by `/`;
//! in a filter `+` stands for one whole level and `#` (last, alone) for
//! any number of levels, including none (`a/#` matches `a`). A topic that
//! begins with `$` is matched by no filter beginning with a wildcard (MQTT
//! 3.1.1, 4.7.2). Publishing on a topic with a wildcard is refused.

use crate::protocol::messaging::MAX_TOPIC;

/// What is wrong with a topic or a filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("is empty")]
    Empty,
    #[error("is {0} bytes; at most {MAX_TOPIC}")]
    TooLong(usize),
    #[error("holds a NUL character")]
    Nul,
    #[error("holds the wildcard `{0}`: a message is published on one topic; wildcards belong in subscribe filters")]
    Wildcard(char),
    #[error("uses `{0}` inside a level; a wildcard must be a whole level (`a/+/c`, `a/#`)")]
    PartialWildcard(char),
    #[error("has `#` before the last level; `#` may only end a filter (`a/#`)")]
    HashNotLast,
}

fn common(text: &str) -> Result<(), TopicError> {
    if text.is_empty() {
        return Err(TopicError::Empty);
    }
    if text.len() > MAX_TOPIC {
        return Err(TopicError::TooLong(text.len()));
    }
    if text.contains('\0') {
        return Err(TopicError::Nul);
    }
    Ok(())
}

/// A topic a message may be published on: no wildcards.
pub fn check_topic(topic: &str) -> Result<(), TopicError> {
    common(topic)?;
    match topic.chars().find(|c| matches!(c, '+' | '#')) {
        Some(c) => Err(TopicError::Wildcard(c)),
        None => Ok(()),
    }
}

/// A subscribe (or publish-grant) filter.
pub fn check_filter(filter: &str) -> Result<(), TopicError> {
    common(filter)?;
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        for wildcard in ['+', '#'] {
            if level.contains(wildcard) && level.len() > 1 {
                return Err(TopicError::PartialWildcard(wildcard));
            }
        }
        if *level == "#" && i + 1 != levels.len() {
            return Err(TopicError::HashNotLast);
        }
    }
    Ok(())
}

/// Whether `topic` (no wildcards) matches `filter` (checked).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match (level, topic_levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (want, Some(have)) if want == have => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

/// Whether any of `filters` matches `topic`.
pub fn any_matches(filters: &[String], topic: &str) -> bool {
    filters.iter().any(|f| matches(f, topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_mqtt_says() {
        let yes = [
            ("sensors/+/temp", "sensors/kitchen/temp"),
            ("cmd/thermo/#", "cmd/thermo"),
            ("cmd/thermo/#", "cmd/thermo/set/target"),
            ("#", "anything/at/all"),
            ("+", "one"),
            ("a//c", "a//c"),
            ("+/+", "/x"),
            ("$SYS/#", "$SYS/load"),
        ];
        for (filter, topic) in yes {
            check_filter(filter).unwrap();
            assert!(matches(filter, topic), "{filter} should match {topic}");
        }
        let no = [
            ("sensors/+/temp", "sensors/kitchen/humidity"),
            ("sensors/+/temp", "sensors/a/b/temp"),
            ("sensors/+/temp", "sensors/temp"),
            ("cmd/thermo/#", "cmd/thermostat"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("#", "$SYS/load"),
            ("+/load", "$SYS/load"),
        ];
        for (filter, topic) in no {
            assert!(!matches(filter, topic), "{filter} should not match {topic}");
        }
    }

    #[test]
    fn bad_filters_and_topics_are_named() {
        assert_eq!(check_filter("a/#/b"), Err(TopicError::HashNotLast));
        assert_eq!(check_filter("a/b#"), Err(TopicError::PartialWildcard('#')));
        assert_eq!(check_filter("a/x+"), Err(TopicError::PartialWildcard('+')));
        assert_eq!(check_filter(""), Err(TopicError::Empty));
        assert_eq!(check_topic("sensors/+/temp"), Err(TopicError::Wildcard('+')));
        assert_eq!(check_topic("sensors/#"), Err(TopicError::Wildcard('#')));
        assert_eq!(check_topic("a\0b"), Err(TopicError::Nul));
        assert_eq!(
            check_topic(&"t".repeat(MAX_TOPIC + 1)),
            Err(TopicError::TooLong(MAX_TOPIC + 1))
        );
        check_topic("sensors/kitchen/temp").unwrap();
    }
}
