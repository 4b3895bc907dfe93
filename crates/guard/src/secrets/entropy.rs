//! Measures of how random a candidate secret looks, for the rules whose format alone would
//! also match ordinary words, identifiers and placeholders.

/// Shannon entropy of `text`'s bytes, in bits per byte: 0 for `aaaa`, 4 for a long random hex
/// string, about 5.95 for random base64url.
#[must_use]
pub fn shannon(text: &str) -> f32 {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let len = bytes.len() as f32;
    counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = n as f32 / len;
            -p * p.log2()
        })
        .sum()
}

pub(crate) fn has_digit(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit())
}

pub(crate) fn has_letter(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_alphabetic())
}

/// `8-4-4-4-12` hexadecimal: an identifier far more often than a secret.
pub(crate) fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// `a.b.c` where every part is an identifier (`settings.SECRET_KEY`, `os.environ`): code
/// that names where a secret is, not the secret.
pub(crate) fn is_dotted_identifier(text: &str) -> bool {
    let mut parts = 0;
    for part in text.split('.') {
        let mut bytes = part.bytes();
        match bytes.next() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
            _ => return false,
        }
        if !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return false;
        }
        parts += 1;
    }
    parts >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_orders_random_above_regular() {
        assert_eq!(shannon(""), 0.0);
        assert_eq!(shannon("aaaaaaaa"), 0.0);
        assert!((shannon("abababab") - 1.0).abs() < 1e-6);
        assert!((shannon("0123456789abcdef") - 4.0).abs() < 1e-6);
        assert!(shannon("kP9xQ2mZ7vR4tL8wN3bY6cF1") > 4.0);
    }

    #[test]
    fn shapes() {
        assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
        assert!(!is_uuid("123e4567e89b12d3a456426614174000"));
        assert!(is_dotted_identifier("settings.SECRET_KEY"));
        assert!(is_dotted_identifier("process.env.API_TOKEN"));
        assert!(!is_dotted_identifier("abc"));
        assert!(!is_dotted_identifier("v1.2.3"));
        assert!(!is_dotted_identifier("eyJ.eyJ.x-y"));
        assert!(has_digit("a1") && !has_digit("ab"));
        assert!(has_letter("1a") && !has_letter("12"));
    }
}
