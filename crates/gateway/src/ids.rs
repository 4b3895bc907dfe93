//! Identifiers the gateway mints: session ids and stream tokens.
//!
//! Both come from the operating system's CSPRNG-seeded generator (`rand`'s thread RNG is a
//! ChaCha CSPRNG reseeded from the OS) and are encoded as unpadded base64url: visible ASCII
//! only (0x21–0x7E), as the transport requires of session ids.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// A random token of `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A session id: 256 bits, unguessable, visible ASCII.
pub fn session_id() -> String {
    random_token(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_long_visible_ascii_and_distinct() {
        let a = session_id();
        let b = session_id();
        assert_ne!(a, b);
        assert!(a.len() >= 43);
        assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c)));
    }
}
