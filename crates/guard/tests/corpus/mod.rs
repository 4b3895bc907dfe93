//! The labelled corpus of `secrets_corpus.rs`: fake credentials in the real formats, built at
//! run time (so no credential-shaped literal is ever committed: GitHub push protection, and
//! anyone grepping the repository, see only prefixes and contexts), and negatives.
//!
//! Fakes are obviously fake where the format leaves room (`FAKE`, `fake`, `deadbeef` in the
//! random part) and random elsewhere, from a fixed seed so every run sees the same corpus.

use std::fmt::Write as _;

/// xorshift64*: small, deterministic, good enough to fill token bodies.
pub struct Rng(u64);

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX: &[u8] = b"0123456789abcdef";
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BECH32: &[u8] = b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";
const DIGITS: &[u8] = b"0123456789";

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn from(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| char::from(alphabet[self.below(alphabet.len())]))
            .collect()
    }

    pub fn alnum(&mut self, n: usize) -> String {
        self.from(ALNUM, n)
    }

    pub fn hex(&mut self, n: usize) -> String {
        self.from(HEX, n)
    }

    pub fn b64url(&mut self, n: usize) -> String {
        // Never end in `-` or `_`: a real token may, but then the context's next character
        // decides where it ends, which is not what this corpus measures.
        let mut s = self.from(B64URL, n.saturating_sub(1));
        s.push_str(&self.alnum(1));
        s
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 24) as u8).collect()
    }
}

/// Standard base64 with padding (no crate needed for a test corpus).
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64url(bytes: &[u8]) -> String {
    base64(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn cat(parts: &[&str]) -> String {
    parts.concat()
}

/// A PEM private key block (`label` such as `RSA `, `OPENSSH `, or empty), lines joined by
/// `newline` (a real newline, or `\n` as JSON writes it inside a string).
fn pem(rng: &mut Rng, label: &str, newline: &str, headers: &[&str]) -> String {
    let mut out = format!("-----BEGIN {label}PRIVATE KEY-----{newline}");
    for header in headers {
        let _ = write!(out, "{header}{newline}");
    }
    if !headers.is_empty() {
        out.push_str(newline);
    }
    let body = base64(&rng.bytes(600));
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push_str(newline);
    }
    let _ = write!(out, "-----END {label}PRIVATE KEY-----");
    out
}

fn jwt(rng: &mut Rng) -> String {
    let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = base64url(
        format!(
            r#"{{"sub":"fake-user-{}","iat":1700000000,"aud":"demo"}}"#,
            rng.hex(6)
        )
        .as_bytes(),
    );
    format!("{header}.{payload}.{}", rng.b64url(43))
}

/// The fake secret for one row of `positives.tsv` (`kind` or `kind#variant`).
pub fn fake(rng: &mut Rng, row: &str) -> String {
    match row {
        "aws-access-key-id" => cat(&["AKIA", "FAKE", &rng.from(BASE32, 12)]),
        "aws-secret-access-key" => format!("fake{}", rng.from(B64, 36)),
        "gcp-service-account-key" => format!("deadbeef{}", rng.hex(32)),
        "google-api-key" => cat(&["AIza", "SyFAKE", &rng.b64url(29)]),
        "google-oauth-client-secret" => cat(&["GOCSPX", "-FAKE", &rng.b64url(24)]),
        "google-oauth-token" => cat(&["ya29", ".a0FAKE", &rng.b64url(120)]),
        "azure-storage-key" => format!("FAKE{}==", rng.from(B64, 82)),
        "azure-ad-client-secret" => {
            let tail = rng.from(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~.",
                30,
            );
            cat(&["Fak8Q~", "FAKE", &tail])
        }
        "azure-sas-token" => {
            let sig = base64(&rng.bytes(32));
            sig.replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        }
        "alibaba-access-key" => cat(&["LTAI", "FAKE", &rng.alnum(16)]),
        "digitalocean-token" => cat(&["dop_v1_", "deadbeef", &rng.hex(56)]),
        "heroku-api-key" => cat(&["HRKU", "-FAKE", &rng.b64url(56)]),
        "heroku-api-key#uuid" => format!(
            "deadbeef-{}-{}-{}-{}",
            rng.hex(4),
            rng.hex(4),
            rng.hex(4),
            rng.hex(12)
        ),
        "github-token" => {
            let prefix = ["ghp", "gho", "ghu", "ghs", "ghr"][rng.below(5)];
            format!("{prefix}_FAKE{}", rng.alnum(32))
        }
        "github-token#fine-grained" => format!(
            "{}_{}_{}",
            cat(&["github", "_pat"]),
            format_args!("11FAKE{}", rng.alnum(16)),
            rng.alnum(59)
        ),
        "gitlab-token" => cat(&["glpat", "-FAKE", &rng.b64url(16)]),
        "gitlab-runner-token" => cat(&["glrt", "-FAKE", &rng.b64url(16)]),
        "gitlab-pipeline-trigger-token" => cat(&["glptt", "-deadbeef", &rng.hex(32)]),
        "bitbucket-app-password" => cat(&["ATBB", "FAKE", &rng.alnum(24), &rng.hex(8)]),
        "atlassian-api-token" => cat(&["ATATT3", "xFfGF0FAKE", &rng.b64url(170), "=", &rng.hex(8)]),
        "circleci-token" => format!("{}_FAKE{}_{}", "CCIPAT", rng.alnum(18), rng.hex(40)),
        "buildkite-token" => cat(&["bkua_", "deadbeef", &rng.hex(32)]),
        "terraform-cloud-token" => format!("{}.atlasv1.FAKE{}", rng.alnum(14), rng.b64url(63)),
        "vault-token" => cat(&["hvs", ".FAKE", &rng.b64url(90)]),
        "doppler-token" => cat(&["dp.pt", ".FAKE", &rng.alnum(39)]),
        "pulumi-token" => cat(&["pul", "-deadbeef", &rng.hex(32)]),
        "sonarqube-token" => cat(&["sqp", "_deadbeef", &rng.hex(32)]),
        "slack-token" => format!(
            "{}-{}-{}-FAKE{}",
            cat(&["xox", "b"]),
            rng.from(DIGITS, 12),
            rng.from(DIGITS, 13),
            rng.alnum(20)
        ),
        "slack-app-token" => format!(
            "{}-1-A{}-{}-{}",
            "xapp",
            rng.from(UPPER_DIGITS, 10),
            rng.from(DIGITS, 13),
            rng.hex(64)
        ),
        "slack-webhook-url" => format!(
            "T{}/B{}/FAKE{}",
            rng.from(UPPER_DIGITS, 8),
            rng.from(UPPER_DIGITS, 10),
            rng.alnum(20)
        ),
        "discord-webhook-url" => format!("FAKE{}", rng.b64url(64)),
        "discord-bot-token" => format!(
            "MTFAKE{}.{}.{}",
            rng.alnum(20),
            rng.alnum(6),
            rng.b64url(38)
        ),
        "telegram-bot-token" => format!("{}:AAFAKE{}", rng.from(DIGITS, 10), rng.b64url(29)),
        "stripe-secret-key" => cat(&["sk_", "test_", "FAKE", &rng.alnum(96)]),
        "stripe-secret-key#live" => cat(&["sk_", "live_", "FAKE", &rng.alnum(24)]),
        "stripe-restricted-key" => cat(&["rk_", "test_", "FAKE", &rng.alnum(24)]),
        "stripe-webhook-secret" => cat(&["whsec", "_FAKE", &rng.alnum(32)]),
        "square-access-token" => cat(&["EAAA", "lFAKE", &rng.b64url(55)]),
        "square-access-token#legacy" => cat(&["sq0atp", "-FAKE", &rng.b64url(18)]),
        "square-oauth-secret" => cat(&["sq0csp", "-FAKE", &rng.b64url(39)]),
        "paypal-braintree-token" => format!(
            "{}${}${}",
            cat(&["access_token", "$production"]),
            rng.from(LOWER_ALNUM, 16),
            rng.hex(32)
        ),
        "paypal-client-secret" => format!("EFAKE{}", rng.b64url(75)),
        "openai-api-key" => cat(&[
            "sk-",
            "proj-",
            "FAKE",
            &rng.b64url(70),
            "T3Blbk",
            "FJ",
            &rng.b64url(74),
        ]),
        "openai-api-key#legacy" => cat(&[
            "sk-",
            "FAKE",
            &rng.alnum(16),
            "T3Blbk",
            "FJ",
            &rng.alnum(20),
        ]),
        "anthropic-api-key" => cat(&["sk-", "ant-", "api03-", "FAKE", &rng.b64url(89), "AA"]),
        "openrouter-api-key" => cat(&["sk-", "or-v1-", "deadbeef", &rng.hex(56)]),
        "sk-api-key" => cat(&["sk-", "deadbeef", &rng.hex(24)]),
        "huggingface-token" => cat(&["hf_", "FAKE", &rng.alnum(30)]),
        "groq-api-key" => cat(&["gsk_", "FAKE", &rng.alnum(48)]),
        "xai-api-key" => cat(&["xai-", "FAKE", &rng.alnum(76)]),
        "replicate-token" => cat(&["r8_", "FAKE", &rng.alnum(33)]),
        "perplexity-api-key" => cat(&["pplx-", "FAKE", &rng.alnum(44)]),
        "langsmith-api-key" => format!("lsv2_pt_deadbeef{}_{}", rng.hex(24), rng.hex(10)),
        "pinecone-api-key" => format!("pcsk_FAKE{}_{}", rng.alnum(2), rng.alnum(60)),
        "npm-token" => cat(&["npm_", "FAKE", &rng.alnum(32)]),
        "pypi-token" => cat(&["pypi-", "AgEIcHlwaS5vcmc", "FAKE", &rng.b64url(120)]),
        "rubygems-token" => cat(&["rubygems_", "deadbeef", &rng.hex(40)]),
        "dockerhub-token" => cat(&["dckr_", "pat_", "FAKE", &rng.b64url(23)]),
        "nuget-api-key" => cat(&["oy2", "fake", &rng.from(LOWER_ALNUM, 39)]),
        "sendgrid-api-key" => format!("SG.FAKE{}.{}", rng.b64url(18), rng.b64url(43)),
        "mailgun-api-key" => cat(&["key-", "deadbeef", &rng.hex(24)]),
        "mailchimp-api-key" => format!("deadbeef{}-us21", rng.hex(24)),
        "twilio-api-key" => cat(&["SK", "deadbeef", &rng.hex(24)]),
        "shopify-token" => cat(&["shpat", "_deadbeef", &rng.hex(24)]),
        "linear-api-key" => cat(&["lin_api_", "FAKE", &rng.alnum(36)]),
        "notion-token" => format!("ntn_{}FAKE{}", rng.from(DIGITS, 11), rng.alnum(31)),
        "notion-token#legacy" => cat(&["secret_", "FAKE", &rng.alnum(39)]),
        "newrelic-api-key" => cat(&["NRAK", "-FAKE", &rng.from(UPPER_DIGITS, 23)]),
        "sentry-token" => cat(&[
            "sntrys",
            "_eyJpYXQiOjE3MDAwMDAwMDB9_FAKE",
            &rng.from(B64, 40),
        ]),
        "databricks-token" => cat(&["dapi", "deadbeef", &rng.hex(24)]),
        "tailscale-key" => format!("tskey-auth-FAKE{}-{}", rng.alnum(8), rng.alnum(30)),
        "postman-api-key" => format!("PMAK-deadbeef{}-{}", rng.hex(16), rng.hex(34)),
        "supabase-token" => cat(&["sbp_", "deadbeef", &rng.hex(32)]),
        "grafana-token" => format!("glsa_FAKE{}_{}", rng.alnum(28), rng.hex(8)),
        "airtable-token" => format!("patFAKE{}.{}", rng.alnum(10), rng.hex(64)),
        "age-secret-key" => cat(&["AGE-SECRET-KEY-1", &rng.from(BECH32, 58)]),
        "onepassword-token" => cat(&["ops_", "eyJzaWduSW5BZGRyZXNzIjoiZmFrZSJ9", &rng.b64url(180)]),
        "mapbox-secret-token" => format!(
            "sk.{}.{}",
            base64url(br#"{"u":"fake","a":"fake-account"}"#),
            rng.b64url(22)
        ),
        "private-key" => {
            let label = ["", "RSA ", "EC ", "DSA "][rng.below(4)];
            pem(rng, label, "\n", &[])
        }
        "private-key#json" => pem(rng, "", "\\n", &[]),
        "private-key#openssh" => pem(rng, "OPENSSH ", "\n", &[]),
        "private-key#encrypted" => pem(
            rng,
            "RSA ",
            "\n",
            &[
                "Proc-Type: 4,ENCRYPTED",
                "DEK-Info: AES-128-CBC,0123456789ABCDEF",
            ],
        ),
        "jwt" => jwt(rng),
        "database-url-password" | "url-credentials" => {
            format!("Fake{}!{}", rng.alnum(10), rng.from(DIGITS, 3))
        }
        "bearer-token" => format!("fake{}", rng.b64url(40)),
        "basic-auth" => base64(format!("fakeuser:{}", rng.alnum(12)).as_bytes()),
        "password" => format!("Fake{}#{}", rng.alnum(8), rng.from(DIGITS, 2)),
        "generic-secret" => format!("fake{}{}", rng.alnum(24), rng.from(DIGITS, 4)),
        other => panic!("no generator for corpus row {other:?}"),
    }
}

/// `kind` of a row (`kind#variant` → `kind`).
pub fn kind_of(row: &str) -> &str {
    row.split_once('#').map_or(row, |(kind, _)| kind)
}

/// The negatives that are generated: identifiers and hashes in the contexts they appear in,
/// and base64 images.
pub fn generated_negatives(rng: &mut Rng) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for _ in 0..200 {
        let uuid = format!(
            "{}-{}-4{}-{}{}-{}",
            rng.hex(8),
            rng.hex(4),
            rng.hex(3),
            ["8", "9", "a", "b"][rng.below(4)],
            rng.hex(3),
            rng.hex(12)
        );
        let context = [
            format!("{{\"id\": \"{uuid}\", \"status\": \"active\"}}"),
            format!("request_id={uuid}"),
            format!("X-Request-Id: {uuid}"),
            format!("{{\"idempotency_key\": \"{uuid}\"}}"),
            format!("{{\"session_token\": \"{uuid}\"}}"),
            format!("trace {uuid} finished in 12 ms"),
        ][rng.below(6)]
        .clone();
        out.push(("uuid", context));
    }
    for _ in 0..200 {
        let sha = rng.hex(40);
        let context = [
            format!("commit {sha}\nAuthor: Ada <ada@example.com>"),
            format!(
                "{{\"sha\": \"{sha}\", \"node_id\": \"C_kwDO{}\"}}",
                rng.alnum(20)
            ),
            format!("Merge: {} {}", &sha[..7], rng.hex(7)),
            format!("git checkout {sha}"),
            format!("\"after\": \"{sha}\","),
        ][rng.below(5)]
        .clone();
        out.push(("git sha", context));
    }
    for _ in 0..200 {
        let digest = rng.hex(64);
        let context = [
            format!("sha256:{digest}"),
            format!("SHA256 (portcullis-0.1.0.tar.gz) = {digest}"),
            format!("ghcr.io/acme/app@sha256:{digest}"),
            format!("{digest}  dist/app.tar.gz"),
            format!("\"checksum\": \"{digest}\""),
            format!("\"integrity\": \"sha512-{}\"", base64(&rng.bytes(64))),
        ][rng.below(6)]
        .clone();
        out.push(("sha256", context));
    }
    for i in 0..30 {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend(rng.bytes(300 + 40 * i));
        let data = base64(&png);
        let context = [
            format!("data:image/png;base64,{data}"),
            format!("{{\"type\": \"image\", \"data\": \"{data}\", \"mimeType\": \"image/png\"}}"),
            format!("<img src=\"data:image/png;base64,{data}\" alt=\"logo\">"),
            format!("background: url(data:image/png;base64,{data});"),
        ][i % 4]
            .clone();
        out.push(("base64 image", context));
    }
    out
}
