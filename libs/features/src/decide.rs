//! Which switches are on for one caller: rules tried in order, the first whose conditions all hold deciding,
//! else the switch's default; installations bucketed by a stable hash so each stays in or out of a
//! percentage as long as the percentage does.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::{DottedNumber, Features, Rule, Switch, SwitchName};

/// What the server knows about a caller.
#[derive(Clone, Copy, Debug, Default)]
pub struct Client<'a> {
    /// The app's build, when the request said which build it is.
    pub build: Option<&'a DottedNumber>,
    /// The app's marketing version (`X-App-Version` only).
    pub version: Option<&'a DottedNumber>,
    /// The installation the app says it is (`/v2/config?installation_id=`), for percentage rules.
    pub installation_id: Option<&'a str>,
}

/// The features file's answer for one caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision<'a> {
    pub minimum_supported_build: Option<&'a DottedNumber>,
    pub recommended_build: Option<&'a DottedNumber>,
    pub switches: BTreeMap<&'a SwitchName, bool>,
}

impl Features {
    /// Every switch's value for `client`, with the supported builds.
    pub fn decide(&self, client: Client<'_>) -> Decision<'_> {
        Decision {
            minimum_supported_build: self.minimum_supported_build.as_ref(),
            recommended_build: self.recommended_build.as_ref(),
            switches: self
                .switches
                .iter()
                .map(|(name, switch)| (name, switch.value(name, client)))
                .collect(),
        }
    }

    /// One switch's value for `client`; `false` for a switch the file does not have, so code that asks for a
    /// switch removed from the file falls back to the old behaviour rather than the new.
    pub fn is_on(&self, name: &str, client: Client<'_>) -> bool {
        self.switches
            .iter()
            .find(|(switch_name, _)| switch_name.as_str() == name)
            .is_some_and(|(switch_name, switch)| switch.value(switch_name, client))
    }
}

impl Switch {
    fn value(&self, name: &SwitchName, client: Client<'_>) -> bool {
        self.rules
            .iter()
            .find(|rule| rule.matches(name, client))
            .map_or(self.default, |rule| rule.enabled)
    }
}

impl Rule {
    fn matches(&self, name: &SwitchName, client: Client<'_>) -> bool {
        let in_range = |range: &Option<crate::Range>, value: Option<&DottedNumber>| match range {
            None => true,
            Some(range) => value.is_some_and(|value| range.contains(value)),
        };
        let in_share = match self.percent {
            None => true,
            Some(percent) => {
                client.installation_id.is_some_and(|id| bucket(name.as_str(), id) < percent.get())
            }
        };
        in_range(&self.builds, client.build) && in_range(&self.versions, client.version) && in_share
    }
}

/// The installation's bucket (0–99) for one switch: the first eight bytes of SHA-256 over the switch name, a
/// NUL and the installation id, modulo 100. The name is part of it so that the 10 % of one switch are not
/// the same installations as the 10 % of every other; the hash is fixed (not `std`'s randomized one) so every
/// replica and every release puts an installation in the same bucket, and raising a percentage only adds
/// installations.
pub fn bucket(switch: &str, installation_id: &str) -> u8 {
    let mut hasher = Sha256::new();
    hasher.update(switch.as_bytes());
    hasher.update([0]);
    hasher.update(installation_id.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        minimum_supported_build = "400"
        recommended_build = "431"

        [switches.new_builds_only]
        default = false
        rules = [{ builds = { from = "431" }, enabled = true }]

        [switches.not_on_broken_build]
        default = true
        rules = [{ builds = { from = "425", before = "427" }, enabled = false }]

        [switches.by_version]
        default = false
        rules = [{ versions = { from = "2.4", before = "3.0" }, enabled = true }]

        [switches.rollout]
        default = false
        rules = [
          { builds = { before = "431" }, enabled = false },
          { percent = 30, enabled = true },
        ]
    "#;

    fn switches(
        build: Option<&str>,
        version: Option<&str>,
        id: Option<&str>,
    ) -> Vec<(String, bool)> {
        let features = Features::parse(FILE).unwrap();
        let build = build.map(|text| DottedNumber::parse(text).unwrap());
        let version = version.map(|text| DottedNumber::parse(text).unwrap());
        let client =
            Client { build: build.as_ref(), version: version.as_ref(), installation_id: id };
        let decision = features.decide(client);
        decision.switches.into_iter().map(|(name, on)| (name.to_string(), on)).collect()
    }

    fn on(list: &[(String, bool)], name: &str) -> bool {
        list.iter().find(|(switch, _)| switch == name).unwrap().1
    }

    #[test]
    fn build_ranges_decide_per_build() {
        let table: &[(Option<&str>, bool, bool)] = &[
            // build, new_builds_only, not_on_broken_build
            (None, false, true),
            (Some("420"), false, true),
            (Some("425"), false, false),
            (Some("426.3"), false, false),
            (Some("427"), false, true),
            (Some("431"), true, true),
            (Some("512"), true, true),
        ];
        for (build, new_only, not_broken) in table {
            let list = switches(*build, None, None);
            assert_eq!(on(&list, "new_builds_only"), *new_only, "{build:?}");
            assert_eq!(on(&list, "not_on_broken_build"), *not_broken, "{build:?}");
        }
    }

    #[test]
    fn version_ranges_need_the_marketing_version() {
        assert!(!on(&switches(Some("431"), None, None), "by_version"));
        assert!(on(&switches(Some("431"), Some("2.4.0"), None), "by_version"));
        assert!(on(&switches(Some("431"), Some("2.9.9"), None), "by_version"));
        assert!(!on(&switches(Some("431"), Some("3.0"), None), "by_version"));
        assert!(!on(&switches(Some("431"), Some("2.3.9"), None), "by_version"));
    }

    #[test]
    fn percentages_take_a_stable_share_of_installations() {
        let ids: Vec<String> = (0..2000).map(|n| format!("installation-{n}")).collect();
        let on_for = |build: &str, id: &str| on(&switches(Some(build), None, Some(id)), "rollout");
        let share = ids.iter().filter(|id| on_for("431", id)).count();
        // 30 % of 2000 is 600; a fair hash lands well within ±80 of it.
        assert!((520..=680).contains(&share), "{share} of 2000 installations");
        // The same installation gets the same answer every time, and an old build never gets it.
        for id in ids.iter().take(50) {
            assert_eq!(on_for("431", id), on_for("440", id), "{id}");
            assert!(!on_for("430", id), "{id}");
        }
        // Without an installation id a percentage rule never matches.
        assert!(!on(&switches(Some("431"), None, None), "rollout"));
    }

    #[test]
    fn buckets_are_fixed_and_per_switch() {
        // Pinned (computed independently: Python's hashlib over the same bytes): a change here would move
        // installations in or out of every running rollout.
        let pinned = [bucket("rollout", "a"), bucket("rollout", "b"), bucket("other", "a")];
        assert_eq!(pinned, [1, 92, 20]);
        let differ = (0..200)
            .filter(|n| bucket("one", &n.to_string()) != bucket("two", &n.to_string()))
            .count();
        assert!(differ > 150, "{differ} of 200 installations differ between switches");
    }

    #[test]
    fn raising_a_percentage_only_adds_installations() {
        let ids: Vec<String> = (0..500).map(|n| format!("i-{n}")).collect();
        for id in &ids {
            let in_at = |percent: u8| bucket("rollout", id) < percent;
            if in_at(10) {
                assert!(in_at(30), "{id}");
            }
        }
        assert!(ids.iter().all(|id| bucket("rollout", id) < 100));
    }

    #[test]
    fn a_switch_not_in_the_file_is_off() {
        let features = Features::parse(FILE).unwrap();
        let build = DottedNumber::parse("431").unwrap();
        let client = Client { build: Some(&build), ..Client::default() };
        assert!(features.is_on("new_builds_only", client));
        assert!(!features.is_on("removed_switch", client));
        let decision = features.decide(client);
        assert_eq!(
            decision.minimum_supported_build.map(ToString::to_string).as_deref(),
            Some("400")
        );
        assert_eq!(decision.recommended_build.map(ToString::to_string).as_deref(), Some("431"));
    }
}
