//! Test RSA keys and JWTs built by hand, so that a test controls every header field (a `kid`
//! that is a path, a `jku` pointing elsewhere, `alg: none`) and still gets a real signature.
//!
//! Keys are RSA 2048 generated with aws-lc-rs in this process; their JWK form (`n e d p q dp dq
//! qi`) is read out of the PKCS#8 DER, which is all aws-lc-rs exports.

use std::sync::{Arc, OnceLock};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Map, Value, json};

/// An RSA 2048 key pair made for this test run. Its `Debug` shows the `kid` only.
#[derive(Clone)]
pub struct TestKey(Arc<KeyMaterial>);

struct KeyMaterial {
    kid: String,
    /// PKCS#1 `RSAPrivateKey`, what jsonwebtoken's aws-lc-rs signer takes.
    pkcs1_der: Vec<u8>,
    /// SubjectPublicKeyInfo.
    spki_der: Vec<u8>,
    /// base64url of n, e, d, p, q, dp, dq, qi (JWK member names).
    parts: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey").field("kid", &self.0.kid).finish()
    }
}

impl TestKey {
    /// A fresh key pair (a few milliseconds).
    pub fn generate(kid: &str) -> TestKey {
        install_crypto_provider();
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let pkcs8: Pkcs8V1Der = pair.as_der().expect("PKCS#8");
        let spki: PublicKeyX509Der = pair.public_key().as_der().expect("SPKI");
        let pkcs1 = pkcs1_from_pkcs8(pkcs8.as_ref());
        let names = ["n", "e", "d", "p", "q", "dp", "dq", "qi"];
        let ints = rsa_private_key_integers(pkcs1);
        assert_eq!(
            ints.len(),
            9,
            "RSAPrivateKey has a version and eight integers"
        );
        let parts = names
            .iter()
            .zip(&ints[1..])
            .map(|(name, int)| (*name, URL_SAFE_NO_PAD.encode(int)))
            .collect();
        TestKey(Arc::new(KeyMaterial {
            kid: kid.to_owned(),
            pkcs1_der: pkcs1.to_vec(),
            spki_der: spki.as_ref().to_vec(),
            parts,
        }))
    }

    /// The authorization server's key for this process (kid `portcullis-test-as`).
    pub fn for_auth_server() -> TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| TestKey::generate("portcullis-test-as"))
            .clone()
    }

    /// A key no authorization server publishes (kid `portcullis-test-untrusted`).
    pub fn untrusted() -> TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| TestKey::generate("portcullis-test-untrusted"))
            .clone()
    }

    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The private JWK (RFC 7518 §6.3.2) with `kid`, `use: sig`, `alg: RS256`.
    pub fn private_jwk(&self) -> Value {
        let mut jwk = self.public_jwk();
        for (name, value) in &self.0.parts[2..] {
            jwk[*name] = json!(value);
        }
        jwk
    }

    /// The public JWK: `kty`, `kid`, `use`, `alg`, `n`, `e`.
    pub fn public_jwk(&self) -> Value {
        json!({
            "kty": "RSA", "kid": self.0.kid, "use": "sig", "alg": "RS256",
            "n": self.0.parts[0].1, "e": self.0.parts[1].1,
        })
    }

    /// `{"keys": [public JWK]}`.
    pub fn public_jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk()] })
    }

    /// The public key as a `PUBLIC KEY` PEM (SPKI): the HMAC secret of the HS256 confusion attack.
    pub fn public_key_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.0.spki_der);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    /// A jsonwebtoken verification key for this key's public half.
    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_rsa_components(&self.0.parts[0].1, &self.0.parts[1].1)
            .expect("RSA components")
    }

    /// A JWS over `claims` with `header`, signed with this key.
    pub fn sign(&self, claims: &Value, header: &MintHeader) -> String {
        assert!(
            matches!(
                header.alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            "an RSA key signs RS* or PS* only, not {:?}",
            header.alg
        );
        let alg = serde_json::to_value(header.alg).expect("alg name");
        let head = header.to_json(alg, Some(self.kid()));
        let input = signing_input(&head, claims);
        let key = EncodingKey::from_rsa_der(&self.0.pkcs1_der);
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &key, header.alg).expect("sign");
        format!("{input}.{signature}")
    }
}

/// Which `kid` a minted token's header carries.
#[derive(Clone, Debug, Default)]
pub enum Kid {
    /// The signing key's own.
    #[default]
    OfKey,
    /// No `kid` at all.
    Absent,
    /// This value (an unknown id, a path, another key's id …).
    Is(String),
}

/// The JOSE header of a minted token. Default: `alg: RS256`, `typ: at+jwt` (RFC 9068), the
/// signing key's `kid`, nothing else.
#[derive(Clone, Debug)]
pub struct MintHeader {
    /// RS256/384/512 or PS256/384/512.
    pub alg: Algorithm,
    pub typ: Option<String>,
    pub kid: Kid,
    /// Further members (`jku`, `x5u`, `jwk`, `crit` …), written as given.
    pub extra: Map<String, Value>,
}

impl Default for MintHeader {
    fn default() -> MintHeader {
        MintHeader {
            alg: Algorithm::RS256,
            typ: Some("at+jwt".to_owned()),
            kid: Kid::OfKey,
            extra: Map::new(),
        }
    }
}

impl MintHeader {
    pub fn alg(mut self, alg: Algorithm) -> MintHeader {
        self.alg = alg;
        self
    }

    /// `typ`; `None` leaves it out.
    pub fn typ(mut self, typ: Option<&str>) -> MintHeader {
        self.typ = typ.map(str::to_owned);
        self
    }

    pub fn kid(mut self, kid: &str) -> MintHeader {
        self.kid = Kid::Is(kid.to_owned());
        self
    }

    pub fn without_kid(mut self) -> MintHeader {
        self.kid = Kid::Absent;
        self
    }

    /// A `jku` (JWK Set URL) header: a verifier must never fetch it.
    pub fn jku(self, url: &str) -> MintHeader {
        self.with("jku", json!(url))
    }

    /// An `x5u` (X.509 URL) header: a verifier must never fetch it.
    pub fn x5u(self, url: &str) -> MintHeader {
        self.with("x5u", json!(url))
    }

    /// Any other header member.
    pub fn with(mut self, name: &str, value: Value) -> MintHeader {
        self.extra.insert(name.to_owned(), value);
        self
    }

    fn to_json(&self, alg: Value, key_kid: Option<&str>) -> Value {
        let mut head = Map::new();
        head.insert("alg".to_owned(), alg);
        if let Some(typ) = &self.typ {
            head.insert("typ".to_owned(), json!(typ));
        }
        match &self.kid {
            Kid::OfKey => {
                if let Some(kid) = key_kid {
                    head.insert("kid".to_owned(), json!(kid));
                }
            }
            Kid::Absent => {}
            Kid::Is(kid) => {
                head.insert("kid".to_owned(), json!(kid));
            }
        }
        for (k, v) in &self.extra {
            head.insert(k.clone(), v.clone());
        }
        Value::Object(head)
    }
}

/// `{"alg":"none","typ":"at+jwt"[,"kid"]}.claims.` — an unsigned token (RFC 7519 §6).
pub fn forge_alg_none(claims: &Value, kid: Option<&str>) -> String {
    let head = MintHeader::default().to_json(json!("none"), kid);
    format!("{}.", signing_input(&head, claims))
}

/// An HS256 token whose HMAC key is `secret` (with an RSA key's public bytes as the secret,
/// this is the algorithm-confusion attack).
pub fn forge_hs256(claims: &Value, secret: &[u8], kid: Option<&str>) -> String {
    let head = MintHeader::default().to_json(json!("HS256"), kid);
    let input = signing_input(&head, claims);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// `base64url(header) "." base64url(claims)`.
fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// `n` random bytes as hex (for unique `jti`s).
pub(super) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// jsonwebtoken picks aws-lc-rs by itself when it is the only provider compiled in; installing
/// it explicitly keeps that true if another crate in the test build enables `rust_crypto` too.
fn install_crypto_provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
    });
}

/// One DER element: (tag, contents, rest). Keys are ours, so malformed input is a bug: panic.
fn der_element(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let (&tag, rest) = input.split_first().expect("DER tag");
    let (&first, rest) = rest.split_first().expect("DER length");
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        assert!((1..=4).contains(&n) && rest.len() >= n, "DER length form");
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    assert!(rest.len() >= len, "DER element overruns its input");
    (tag, &rest[..len], &rest[len..])
}

/// PrivateKeyInfo (RFC 5208) → its privateKey OCTET STRING, an RSAPrivateKey (RFC 8017 A.1.2).
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> &[u8] {
    let (tag, info, _) = der_element(pkcs8);
    assert_eq!(tag, 0x30, "PrivateKeyInfo is a SEQUENCE");
    let (_, _version, rest) = der_element(info);
    let (_, _algorithm, rest) = der_element(rest);
    let (tag, private_key, _) = der_element(rest);
    assert_eq!(tag, 0x04, "privateKey is an OCTET STRING");
    private_key
}

/// The INTEGERs of an RSAPrivateKey, as unsigned big-endian bytes without leading zeros.
fn rsa_private_key_integers(pkcs1: &[u8]) -> Vec<&[u8]> {
    let (tag, mut rest, _) = der_element(pkcs1);
    assert_eq!(tag, 0x30, "RSAPrivateKey is a SEQUENCE");
    let mut ints = Vec::new();
    while !rest.is_empty() {
        let (tag, int, next) = der_element(rest);
        assert_eq!(tag, 0x02, "RSAPrivateKey holds INTEGERs");
        let start = int
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(int.len().saturating_sub(1));
        ints.push(&int[start..]);
        rest = next;
    }
    ints
}
