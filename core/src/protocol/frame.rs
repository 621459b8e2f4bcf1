//! Length-prefixed framing (being written).
