//! Redis users: one per client service, each confined to its own keys and to data commands, so neither can
//! touch the other's keys, and no client can reconfigure the server, flush it or run scripts. The `default`
//! user is off: a connection without a user and password can do nothing.
//!
//! The rules live here so the server's ACL file (see kustomize/README.md) and the tests use the same ones.

/// A client service's Redis user and the keys it owns (under any `REDIS_KEY_PREFIX`, hence the leading `*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AclUser {
    pub name: &'static str,
    pub keys: &'static str,
}

/// The api's snapshot copies and rebuild lock; push's preference index.
pub const USERS: [AclUser; 2] = [
    AclUser { name: "hangang-api", keys: "*hj:v2:snapshot:*" },
    AclUser { name: "hangang-push", keys: "*hj:v1:push:*" },
];

/// What every user may run: reads, writes, transactions and connection commands, minus everything Redis
/// marks dangerous (CONFIG, FLUSHALL, KEYS, DEBUG, …); no pub/sub channels, no scripting.
const COMMANDS: &str =
    "resetchannels -@all +@read +@write +@transaction +@connection -@dangerous -@scripting";

impl AclUser {
    /// This user's line in an ACL file, with its password given as the hex SHA-256 Redis compares (`#…`).
    pub fn line(&self, password_sha256_hex: &str) -> String {
        format!("user {} on #{password_sha256_hex} ~{} {COMMANDS}", self.name, self.keys)
    }
}

/// The ACL file's first line: connections without a user are refused.
pub const DEFAULT_OFF: &str = "user default off";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_acl_file_is_the_one_the_code_makes() {
        let readme = include_str!("../../../kustomize/README.md");
        assert!(readme.contains(DEFAULT_OFF), "kustomize/README.md lacks `{DEFAULT_OFF}`");
        for user in USERS {
            for part in [format!("user {} on #", user.name), format!("~{} {COMMANDS}", user.keys)] {
                assert!(readme.contains(&part), "kustomize/README.md lacks `{part}`");
            }
        }
    }
}
