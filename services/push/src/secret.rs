//! Installation ids and secrets: random, shown once, stored only as a hash, compared in constant time.

use sha2::{Digest, Sha256};

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system provides randomness");
    buffer.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A new installation id (128 random bits).
pub fn new_installation_id() -> String {
    random_hex(16)
}

/// A new secret (256 random bits), prefixed so it is recognisable in a leaked log.
pub fn new_secret() -> String {
    format!("hjs_{}", random_hex(32))
}

/// What is stored: the SHA-256 of the secret. The secret has 256 bits of entropy, so no salt or slow hash
/// is needed to resist guessing.
pub fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Compares a presented secret with a stored hash without leaking where they differ.
pub fn matches(secret: &str, stored_hash: &str) -> bool {
    let presented = hash(secret);
    presented.len() == stored_hash.len()
        && presented
            .bytes()
            .zip(stored_hash.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_verified_by_hash() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with("hjs_") && a.len() == 68);
        assert!(matches(&a, &hash(&a)));
        assert!(!matches(&b, &hash(&a)));
        assert_eq!(new_installation_id().len(), 32);
    }
}
