//! What the gateway keeps of a finished authorization, as bytes to seal: a user's grant
//! ([`StoredGrant`]) and the gateway's own registration at an authorization server
//! ([`ClientIdentity`]).
//!
//! The JSON forms carry a format number (`v`) and refuse fields they do not know, so a
//! grant written by a newer Portcullis is reported, not half read. Serialization writes into
//! one buffer sized up front and wiped on drop (no reallocation leaves a token behind in
//! freed memory), and decoding errors name a position, never the text found there.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::token::{ClientAuth, ClientIdentity, TokenSet};
use crate::secret::Secret;

/// The format of both JSON forms.
const FORMAT: u32 = 1;

/// Room for the field names and punctuation of a form, on top of its values.
const FORM_OVERHEAD: usize = 512;

/// One principal's grant at one server: the tokens, when they were obtained (the clock
/// `expires_in` counts from), and the issuer and resource they belong to.
#[derive(Debug, Clone)]
pub struct StoredGrant {
    pub tokens: TokenSet,
    /// Stored as whole seconds since the Unix epoch.
    pub obtained_at: SystemTime,
    pub issuer: String,
    pub resource: String,
}

/// A stored form that cannot be decoded. The text says where, not what was found (it may be
/// a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredFormError {
    #[error("the stored {what} is not valid ({category} at column {column})")]
    Malformed {
        what: &'static str,
        category: &'static str,
        column: usize,
    },
    #[error("the stored {what} has format {found}; this build reads format {FORMAT}")]
    UnknownFormat { what: &'static str, found: u32 },
    #[error("the stored {what} could not be encoded")]
    Encode { what: &'static str },
}

impl StoredFormError {
    fn malformed(what: &'static str, e: &serde_json::Error) -> Self {
        StoredFormError::Malformed {
            what,
            category: match e.classify() {
                serde_json::error::Category::Io => "i/o error",
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Data => "unexpected data",
                serde_json::error::Category::Eof => "truncated",
            },
            column: e.column(),
        }
    }
}

#[derive(Serialize)]
struct GrantOut<'a> {
    v: u32,
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    obtained_at: u64,
    issuer: &'a str,
    resource: &'a str,
}

/// No `Debug`: it holds tokens.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantIn {
    v: u32,
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
    obtained_at: u64,
    issuer: String,
    resource: String,
}

impl StoredGrant {
    /// The grant as JSON, in a buffer wiped on drop.
    pub fn to_json(&self) -> Result<Zeroizing<Vec<u8>>, StoredFormError> {
        let t = &self.tokens;
        let out = GrantOut {
            v: FORMAT,
            access_token: t.access_token.expose(),
            refresh_token: t.refresh_token.as_ref().map(Secret::expose),
            expires_in: t.expires_in.map(|d| d.as_secs()),
            scope: t.scope.as_deref(),
            obtained_at: unix_seconds(self.obtained_at),
            issuer: &self.issuer,
            resource: &self.resource,
        };
        let values = [
            out.access_token.len(),
            out.refresh_token.map_or(0, str::len),
            out.scope.map_or(0, str::len),
            out.issuer.len(),
            out.resource.len(),
        ];
        encode(&out, &values, "grant")
    }

    /// The grant [`to_json`](StoredGrant::to_json) wrote. An empty access token is refused
    /// (it could only be a damaged row).
    pub fn from_json(bytes: &[u8]) -> Result<Self, StoredFormError> {
        const WHAT: &str = "grant";
        let g: GrantIn = decode(bytes, WHAT, |g: &GrantIn| g.v)?;
        if g.access_token.is_empty() {
            return Err(StoredFormError::Malformed {
                what: WHAT,
                category: "empty access token",
                column: 0,
            });
        }
        Ok(StoredGrant {
            tokens: TokenSet {
                access_token: Secret::new(g.access_token),
                refresh_token: g.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
                expires_in: g.expires_in.map(Duration::from_secs),
                scope: g.scope,
            },
            obtained_at: UNIX_EPOCH + Duration::from_secs(g.obtained_at),
            issuer: g.issuer,
            resource: g.resource,
        })
    }

    /// When the access token expires: `obtained_at + expires_in`; `None` when the server
    /// did not say (the token is used until the server refuses it).
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.tokens
            .expires_in
            .and_then(|d| self.obtained_at.checked_add(d))
    }
}

#[derive(Serialize)]
struct ClientOut<'a> {
    v: u32,
    client_id: &'a str,
    auth: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
}

/// No `Debug`: it holds the client secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientIn {
    v: u32,
    client_id: String,
    auth: String,
    #[serde(default)]
    client_secret: Option<String>,
}

const AUTH_NONE: &str = "none";
const AUTH_BASIC: &str = "client_secret_basic";
const AUTH_POST: &str = "client_secret_post";

impl ClientIdentity {
    /// The registration as JSON (`client_id`, how it authenticates, its secret), in a
    /// buffer wiped on drop.
    pub fn to_json(&self) -> Result<Zeroizing<Vec<u8>>, StoredFormError> {
        let (auth, secret) = match &self.auth {
            ClientAuth::None => (AUTH_NONE, None),
            ClientAuth::ClientSecretBasic(s) => (AUTH_BASIC, Some(s.expose())),
            ClientAuth::ClientSecretPost(s) => (AUTH_POST, Some(s.expose())),
        };
        let out = ClientOut {
            v: FORMAT,
            client_id: &self.client_id,
            auth,
            client_secret: secret,
        };
        let values = [self.client_id.len(), secret.map_or(0, str::len)];
        encode(&out, &values, "client registration")
    }

    /// The registration [`to_json`](ClientIdentity::to_json) wrote. A method with a secret
    /// and none stored (or the reverse) is refused.
    pub fn from_json(bytes: &[u8]) -> Result<Self, StoredFormError> {
        const WHAT: &str = "client registration";
        let c: ClientIn = decode(bytes, WHAT, |c: &ClientIn| c.v)?;
        let mismatch = StoredFormError::Malformed {
            what: WHAT,
            category: "authentication method and secret disagree",
            column: 0,
        };
        let secret = c.client_secret.filter(|s| !s.is_empty()).map(Secret::new);
        let auth = match (c.auth.as_str(), secret) {
            (AUTH_NONE, None) => ClientAuth::None,
            (AUTH_BASIC, Some(s)) => ClientAuth::ClientSecretBasic(s),
            (AUTH_POST, Some(s)) => ClientAuth::ClientSecretPost(s),
            _ => return Err(mismatch),
        };
        if c.client_id.is_empty() {
            return Err(StoredFormError::Malformed {
                what: WHAT,
                category: "empty client_id",
                column: 0,
            });
        }
        Ok(ClientIdentity {
            client_id: c.client_id,
            auth,
        })
    }
}

/// `value` as JSON into one buffer with room for all of it: each value's length counted
/// six times over (the most JSON escaping can make of a byte), plus the punctuation.
fn encode(
    value: &impl Serialize,
    value_lengths: &[usize],
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, StoredFormError> {
    let room = value_lengths.iter().fold(FORM_OVERHEAD, |sum, len| {
        sum.saturating_add(len.saturating_mul(6))
    });
    let mut buf = Zeroizing::new(Vec::with_capacity(room));
    serde_json::to_writer(&mut *buf, value).map_err(|_| StoredFormError::Encode { what })?;
    Ok(buf)
}

/// Decodes a form and checks its format number (`format_of` reads it).
fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
    format_of: impl FnOnce(&T) -> u32,
) -> Result<T, StoredFormError> {
    let form: T =
        serde_json::from_slice(bytes).map_err(|e| StoredFormError::malformed(what, &e))?;
    match format_of(&form) {
        FORMAT => Ok(form),
        found => Err(StoredFormError::UnknownFormat { what, found }),
    }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> StoredGrant {
        StoredGrant {
            tokens: TokenSet {
                access_token: Secret::new("at-\"ü\"-1".into()),
                refresh_token: Some(Secret::new("rt-2".into())),
                expires_in: Some(Duration::from_secs(3600)),
                scope: Some("files:read files:write".into()),
            },
            obtained_at: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            issuer: "https://as.example".into(),
            resource: "https://mcp.example/mcp".into(),
        }
    }

    #[test]
    fn a_grant_round_trips_through_json() {
        let json = grant().to_json().unwrap();
        let back = StoredGrant::from_json(&json).unwrap();
        assert_eq!(back.tokens.access_token.expose(), "at-\"ü\"-1");
        assert_eq!(back.tokens.refresh_token.unwrap().expose(), "rt-2");
        assert_eq!(back.tokens.expires_in, Some(Duration::from_secs(3600)));
        assert_eq!(back.tokens.scope.as_deref(), Some("files:read files:write"));
        assert_eq!(back.obtained_at, grant().obtained_at);
        assert_eq!(back.issuer, "https://as.example");
        assert_eq!(back.resource, "https://mcp.example/mcp");
    }

    #[test]
    fn a_grant_without_refresh_token_or_lifetime_round_trips_and_never_expires() {
        let mut g = grant();
        g.tokens.refresh_token = None;
        g.tokens.expires_in = None;
        g.tokens.scope = None;
        let json = g.to_json().unwrap();
        assert!(!String::from_utf8_lossy(&json).contains("refresh_token"));
        let back = StoredGrant::from_json(&json).unwrap();
        assert!(back.tokens.refresh_token.is_none() && back.tokens.scope.is_none());
        assert_eq!(back.expires_at(), None);
    }

    #[test]
    fn expiry_counts_from_when_the_tokens_were_obtained() {
        assert_eq!(
            grant().expires_at(),
            Some(UNIX_EPOCH + Duration::from_secs(1_800_003_600))
        );
        let mut far = grant();
        far.tokens.expires_in = Some(Duration::from_secs(u64::MAX));
        assert_eq!(
            far.expires_at(),
            None,
            "an overflow is no expiry, not a panic"
        );
    }

    #[test]
    fn unknown_fields_formats_and_damage_are_refused_without_quoting_tokens() {
        let json = String::from_utf8(grant().to_json().unwrap().to_vec()).unwrap();
        let newer = json.replacen("{", "{\"dpop_key\":\"k\",", 1);
        assert!(matches!(
            StoredGrant::from_json(newer.as_bytes()),
            Err(StoredFormError::Malformed { .. })
        ));
        let future = json.replacen("\"v\":1", "\"v\":2", 1);
        assert_eq!(
            StoredGrant::from_json(future.as_bytes()).unwrap_err(),
            StoredFormError::UnknownFormat {
                what: "grant",
                found: 2
            }
        );
        let wrong_type = json.replacen("\"obtained_at\":1800000000", "\"obtained_at\":\"rt-2\"", 1);
        let error = StoredGrant::from_json(wrong_type.as_bytes()).unwrap_err();
        assert!(!error.to_string().contains("rt-2"), "{error}");
        for cut in [0, 1, json.len() / 2, json.len() - 1] {
            assert!(StoredGrant::from_json(&json.as_bytes()[..cut]).is_err());
        }
        let empty = json.replacen(
            "\"access_token\":\"at-\\\"ü\\\"-1\"",
            "\"access_token\":\"\"",
            1,
        );
        assert!(StoredGrant::from_json(empty.as_bytes()).is_err());
    }

    #[test]
    fn client_registrations_round_trip_with_their_method() {
        for auth in [
            ClientAuth::None,
            ClientAuth::ClientSecretBasic(Secret::new("cs-basic".into())),
            ClientAuth::ClientSecretPost(Secret::new("cs-post".into())),
        ] {
            let client = ClientIdentity {
                client_id: "client-1".into(),
                auth,
            };
            let back = ClientIdentity::from_json(&client.to_json().unwrap()).unwrap();
            assert_eq!(back.client_id, "client-1");
            match (&client.auth, &back.auth) {
                (ClientAuth::None, ClientAuth::None) => {}
                (ClientAuth::ClientSecretBasic(a), ClientAuth::ClientSecretBasic(b))
                | (ClientAuth::ClientSecretPost(a), ClientAuth::ClientSecretPost(b)) => {
                    assert_eq!(a, b)
                }
                (a, b) => panic!("{a:?} came back as {b:?}"),
            }
        }
    }

    #[test]
    fn a_registration_whose_method_and_secret_disagree_is_refused() {
        for bad in [
            r#"{"v":1,"client_id":"c","auth":"client_secret_basic"}"#,
            r#"{"v":1,"client_id":"c","auth":"none","client_secret":"s"}"#,
            r#"{"v":1,"client_id":"c","auth":"private_key_jwt","client_secret":"s"}"#,
            r#"{"v":1,"client_id":"","auth":"none"}"#,
        ] {
            assert!(ClientIdentity::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
