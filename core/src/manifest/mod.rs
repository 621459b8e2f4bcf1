//! component.toml and deployment.toml (being written).
