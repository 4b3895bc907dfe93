//! PKCE with `S256` (RFC 7636, OAuth 2.1 §7.5.2), and the random values of a flow.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::secret::Secret;

/// A code verifier and its challenge. The verifier is 32 random bytes in base64url, 43
/// characters (RFC 7636 §4.1's minimum length and its recommended construction).
#[derive(Debug, Clone)]
pub struct Pkce {
    verifier: Secret,
    challenge: String,
}

impl Pkce {
    /// The only method this client uses.
    pub const METHOD: &'static str = "S256";

    pub fn generate() -> Self {
        Self::from_verifier(random_token())
    }

    fn from_verifier(verifier: Secret) -> Self {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }

    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    pub fn verifier(&self) -> &Secret {
        &self.verifier
    }

    pub(crate) fn into_verifier(self) -> Secret {
        self.verifier
    }
}

/// 256 random bits from a CSPRNG seeded by the operating system (`rand::rng`), base64url (43 characters): a PKCE
/// verifier or an OAuth `state`.
pub(crate) fn random_token() -> Secret {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(bytes.as_mut());
    Secret::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_challenge_is_reproduced() {
        let p = Pkce::from_verifier(Secret::new(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        ));
        assert_eq!(p.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn verifiers_are_43_unreserved_characters_and_never_repeat() {
        let a = Pkce::generate();
        let b = Pkce::generate();
        assert_eq!(a.verifier().expose().len(), 43);
        assert!(
            a.verifier()
                .expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a.verifier(), b.verifier());
        assert_ne!(a.challenge(), a.verifier().expose());
        assert!(!format!("{a:?}").contains(a.verifier().expose()));
    }
}
