//! The topic layout, version 1 (docs/mqtt.md). Every topic starts with
//! `arcella/v1/`; device ids and group names follow the module-name rule
//! (no `/`, `+` or `#`), so they can never change a topic's shape.

/// The prefix of every Arcella topic of this layout version.
pub const ROOT: &str = "arcella/v1";

/// Why a name cannot be part of a topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` {reason}")]
pub struct BadName {
    pub name: String,
    pub reason: String,
}

/// `name` if it can be a topic level (the module-name rule).
pub fn checked_name(name: &str) -> Result<&str, BadName> {
    checked(name)
}

fn checked(name: &str) -> Result<&str, BadName> {
    arcella_core::manifest::check_name(name).map_err(|reason| BadName {
        name: name.to_owned(),
        reason,
    })?;
    Ok(name)
}

/// The topics of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTopics {
    device: String,
    base: String,
}

impl DeviceTopics {
    pub fn new(device: &str) -> Result<Self, BadName> {
        Ok(Self {
            device: device.to_owned(),
            base: format!("{ROOT}/{}", checked(device)?),
        })
    }

    /// The device id.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Commands from operator `client` (QoS 1): postcard `ClientMessage`s.
    pub fn command(&self, client: &str) -> Result<String, BadName> {
        Ok(format!("{}/cmd/{}", self.base, checked(client)?))
    }

    /// What the device subscribes to for commands from any operator.
    pub fn commands_filter(&self) -> String {
        format!("{}/cmd/+", self.base)
    }

    /// Answers to operator `client` (QoS 1): postcard `ServerMessage`s.
    pub fn reply(&self, client: &str) -> Result<String, BadName> {
        Ok(format!("{}/reply/{}", self.base, checked(client)?))
    }

    /// Retained `online`, or `offline` (the last will).
    pub fn presence(&self) -> String {
        format!("{}/presence", self.base)
    }

    /// Retained reported state.
    pub fn state(&self) -> String {
        format!("{}/state", self.base)
    }

    /// Module events (QoS 0).
    pub fn events(&self) -> String {
        format!("{}/events", self.base)
    }

    /// Retained desired state for this device.
    pub fn desired(&self) -> String {
        format!("{}/desired", self.base)
    }

    /// Retained progress towards the desired state (`Convergence`).
    pub fn convergence(&self) -> String {
        format!("{}/convergence", self.base)
    }

    /// Retained random id of the agent's current run: another one arriving
    /// means another device uses this device id.
    pub fn instance(&self) -> String {
        format!("{}/instance", self.base)
    }

    /// The JSON mirror's topic `leaf` (`json::STATE`, …).
    pub fn json(&self, leaf: &str) -> String {
        format!("{}/json/{leaf}", self.base)
    }

    /// Retained documents the device applied, as signed (`AppliedDocuments`).
    pub fn applied(&self) -> String {
        format!("{}/applied", self.base)
    }
}

/// What describes an artifact's chunks (`ArtifactRef` without signature),
/// retained beside them, so `fleet purge` can find every chunk.
pub fn artifact_meta(sha_hex: &str) -> String {
    format!("{ROOT}/artifacts/{sha_hex}/meta")
}

/// Chunk `index` of the artifact with this sha256 (hex), retained.
pub fn artifact_chunk(sha_hex: &str, index: u64) -> String {
    format!("{ROOT}/artifacts/{sha_hex}/{index}")
}

/// What the agent subscribes to for chunks: all artifacts' chunks start so.
pub const ARTIFACTS_PREFIX: &str = "arcella/v1/artifacts/";

/// Retained desired state for every device of `group`.
pub fn group_desired(group: &str) -> Result<String, BadName> {
    Ok(format!("{ROOT}/group/{}/desired", checked(group)?))
}

/// Retained state of the group's staged rollout (signed `RolloutState`).
pub fn group_rollout(group: &str) -> Result<String, BadName> {
    Ok(format!("{ROOT}/group/{}/rollout", checked(group)?))
}

/// Retained claim of the operator connection running the group's
/// rollout now (`nonce` names the connection); its last will clears it.
pub fn group_rollout_claim(group: &str, nonce: &str) -> Result<String, BadName> {
    Ok(format!(
        "{ROOT}/group/{}/rollout/claims/{}",
        checked(group)?,
        checked(nonce)?
    ))
}

/// Every claim on the group's rollout.
pub fn group_rollout_claims(group: &str) -> Result<String, BadName> {
    Ok(format!("{ROOT}/group/{}/rollout/claims/+", checked(group)?))
}

/// The JSON mirror's topic `leaf` for a group (`rollout`).
pub fn group_json(group: &str, leaf: &str) -> Result<String, BadName> {
    Ok(format!("{ROOT}/group/{}/json/{leaf}", checked(group)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_the_documented_one() {
        let t = DeviceTopics::new("gw-17").unwrap();
        assert_eq!(t.command("ops").unwrap(), "arcella/v1/gw-17/cmd/ops");
        assert_eq!(t.commands_filter(), "arcella/v1/gw-17/cmd/+");
        assert_eq!(t.reply("ops").unwrap(), "arcella/v1/gw-17/reply/ops");
        assert_eq!(t.presence(), "arcella/v1/gw-17/presence");
        assert_eq!(t.state(), "arcella/v1/gw-17/state");
        assert_eq!(t.events(), "arcella/v1/gw-17/events");
        assert_eq!(t.desired(), "arcella/v1/gw-17/desired");
        assert_eq!(t.convergence(), "arcella/v1/gw-17/convergence");
        assert_eq!(t.applied(), "arcella/v1/gw-17/applied");
        assert_eq!(t.json("state"), "arcella/v1/gw-17/json/state");
        assert_eq!(artifact_meta("ab"), "arcella/v1/artifacts/ab/meta");
        assert_eq!(t.instance(), "arcella/v1/gw-17/instance");
        assert_eq!(artifact_chunk("ab", 3), "arcella/v1/artifacts/ab/3");
        assert_eq!(group_desired("north").unwrap(), "arcella/v1/group/north/desired");
        assert_eq!(group_rollout("north").unwrap(), "arcella/v1/group/north/rollout");
        assert_eq!(
            group_rollout_claim("north", "ab12").unwrap(),
            "arcella/v1/group/north/rollout/claims/ab12"
        );
        assert_eq!(
            group_json("north", "rollout").unwrap(),
            "arcella/v1/group/north/json/rollout"
        );
    }

    #[test]
    fn a_name_cannot_change_a_topics_shape() {
        for bad in ["a/b", "+", "#", "", "Upper"] {
            assert!(DeviceTopics::new(bad).is_err(), "{bad}");
        }
        let t = DeviceTopics::new("d").unwrap();
        assert!(t.command("x/y").is_err());
    }
}
