//! The APNs provider token: one ES256 JWT (`kid` header; `iss`, `iat` claims), reused across requests and
//! replaced after [`REFRESH_AFTER_SECONDS`]: between Apple's 20-minute floor (refreshing more often is
//! answered `429 TooManyProviderTokenUpdates`) and its 60-minute ceiling (older tokens are rejected).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::{
    ecdsa::{Signature, SigningKey, signature::Signer},
    pkcs8::DecodePrivateKey,
};
use std::sync::Mutex;

/// A token is never replaced sooner than this (Apple's floor), except when APNs says it expired.
pub const MIN_AGE_SECONDS: i64 = 20 * 60;
/// A token is replaced once it is this old (under Apple's 60-minute limit, with room for clock skew).
pub const REFRESH_AFTER_SECONDS: i64 = 50 * 60;

/// Why the signing key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("APNS_KEY_PATH: cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("APNS_KEY_PATH: not a PKCS#8 P-256 private key (.p8): {0}")]
    Parse(String),
}

/// Signs and caches the provider token.
pub struct ProviderToken {
    key: SigningKey,
    key_id: String,
    team_id: String,
    /// (token, issued at) of the current token.
    current: Mutex<Option<(String, i64)>>,
}

impl std::fmt::Debug for ProviderToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderToken")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish()
    }
}

impl ProviderToken {
    /// From the `.p8` file Apple issues (PKCS#8 PEM).
    pub fn from_pem(pem: &str, key_id: &str, team_id: &str) -> Result<ProviderToken, KeyError> {
        let key =
            SigningKey::from_pkcs8_pem(pem).map_err(|error| KeyError::Parse(error.to_string()))?;
        Ok(ProviderToken {
            key,
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            current: Mutex::new(None),
        })
    }

    pub fn from_file(path: &str, key_id: &str, team_id: &str) -> Result<ProviderToken, KeyError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|error| KeyError::Read { path: path.to_owned(), error })?;
        ProviderToken::from_pem(&pem, key_id, team_id)
    }

    fn sign(&self, issued_at: i64) -> String {
        let header =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"ES256","kid":"{}"}}"#, self.key_id));
        let claims =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"{}","iat":{issued_at}}}"#, self.team_id));
        let signing_input = format!("{header}.{claims}");
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// The token to use at `now` (unix seconds): the cached one while it is younger than
    /// [`REFRESH_AFTER_SECONDS`], else a new one.
    pub fn current(&self, now: i64) -> String {
        let mut current = self.current.lock().expect("the token lock is never poisoned");
        match &*current {
            Some((token, issued_at)) if now - issued_at < REFRESH_AFTER_SECONDS => token.clone(),
            _ => {
                let token = self.sign(now);
                *current = Some((token.clone(), now));
                token
            }
        }
    }

    /// APNs answered `ExpiredProviderToken` for `rejected`: replace it, unless another request already did.
    pub fn replace_expired(&self, rejected: &str, now: i64) -> String {
        let mut current = self.current.lock().expect("the token lock is never poisoned");
        match &*current {
            Some((token, _)) if token != rejected => token.clone(),
            _ => {
                let token = self.sign(now);
                *current = Some((token.clone(), now));
                token
            }
        }
    }

    /// When the current token was issued.
    pub fn issued_at(&self) -> Option<i64> {
        self.current.lock().expect("the token lock is never poisoned").as_ref().map(|(_, at)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> ProviderToken {
        ProviderToken::from_pem(&replay::apns::generate_key(), "ABC123DEFG", "TEAM123456").unwrap()
    }

    #[test]
    fn one_token_is_reused_and_refreshed_after_fifty_minutes() {
        let provider = token();
        let first = provider.current(1_000);
        assert_eq!(provider.current(1_000 + 49 * 60), first, "reused");
        let second = provider.current(1_000 + 50 * 60);
        assert_ne!(second, first, "refreshed before Apple's hour");
        assert_eq!(provider.issued_at(), Some(1_000 + 50 * 60));
    }

    #[test]
    fn an_expired_token_is_replaced_once() {
        let provider = token();
        let rejected = provider.current(1_000);
        let replacement = provider.replace_expired(&rejected, 1_010);
        assert_ne!(replacement, rejected);
        // A second request that saw the same rejection gets the replacement, not a third token.
        assert_eq!(provider.replace_expired(&rejected, 1_011), replacement);
    }

    #[test]
    fn tokens_verify_with_the_public_key() {
        use p256::{
            ecdsa::{VerifyingKey, signature::Verifier},
            pkcs8::DecodePublicKey,
        };
        let pem = replay::apns::generate_key();
        let provider = ProviderToken::from_pem(&pem, "ABC123DEFG", "TEAM123456").unwrap();
        let jwt = provider.current(1_700_000_000);
        let (signing_input, signature) = jwt.rsplit_once('.').unwrap();
        let key =
            VerifyingKey::from_public_key_pem(&replay::apns::public_pem(&pem).unwrap()).unwrap();
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
        key.verify(signing_input.as_bytes(), &signature).unwrap();
        let header = String::from_utf8(
            URL_SAFE_NO_PAD.decode(signing_input.split('.').next().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(header, r#"{"alg":"ES256","kid":"ABC123DEFG"}"#);
    }
}
