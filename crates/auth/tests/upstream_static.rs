//! Static upstream credentials (bearer tokens and fixed headers from env or file), and what
//! the configuration refuses.

mod upstream_support;

use portcullis_auth::secret::{Secret, SecretError};
use portcullis_auth::upstream::{CredentialError, CredentialSpec, UpstreamCredential};
use upstream_support::{Reply, Server, credential, egress, secret_file, send_upstream, spec};

const TOKEN: &str = "upstream-static-token-7";

#[tokio::test]
async fn a_bearer_file_credential_sends_the_file_content() {
    let file = secret_file(TOKEN);
    let cred = credential(&format!(
        r#"{{ bearer_file = "{}" }}"#,
        file.path().display()
    ));
    let headers = cred.headers(None).await.unwrap();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].0, "authorization");
    assert_eq!(headers[0].1, format!("Bearer {TOKEN}").as_str());
    assert!(headers[0].1.is_sensitive());
}

#[tokio::test]
async fn header_credentials_come_from_env_and_file() {
    // Tests cannot set variables (unsafe code is forbidden): PATH is always there.
    let path = std::env::var("PATH").unwrap();
    let file = secret_file("org-key");
    let cred = credential(&format!(
        r#"{{ headers = {{ "X-Api-Key" = {{ env = "PATH" }}, "X-Org-Key" = {{ file = "{}" }} }} }}"#,
        file.path().display()
    ));
    let headers = cred.headers(None).await.unwrap();
    assert_eq!(headers.len(), 2);
    assert_eq!(headers[0].0, "x-api-key");
    assert_eq!(headers[0].1, path.as_str());
    assert_eq!(headers[1].0, "x-org-key");
    assert_eq!(headers[1].1, "org-key");
    assert!(headers.iter().all(|(_, v)| v.is_sensitive()));
}

#[test]
fn a_missing_env_var_names_the_variable_and_no_value() {
    let name = "PORTCULLIS_TEST_UNSET_TICKETS_TOKEN_51D0";
    for text in [
        format!(r#"{{ bearer_env = "{name}" }}"#),
        format!(r#"{{ headers = {{ "X-Api-Key" = {{ env = "{name}" }} }} }}"#),
        format!(
            r#"{{ client_credentials = {{ token_url = "https://idp.example.com/token", client_id = "gw", secret_env = "{name}" }} }}"#
        ),
    ] {
        let err = UpstreamCredential::new(&spec(&text), egress()).unwrap_err();
        assert_eq!(
            err,
            CredentialError::Secret(SecretError::EnvNotSet {
                name: name.to_owned()
            })
        );
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn a_missing_secret_file_fails_at_construction_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tickets-token");
    let err =
        UpstreamCredential::new(&CredentialSpec::BearerFile(path.clone()), egress()).unwrap_err();
    assert!(err.to_string().contains("tickets-token"), "{err}");
}

#[test]
fn an_inline_secret_in_headers_config_is_refused() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Server {
        credential: CredentialSpec,
    }
    let err = toml::from_str::<Server>(
        r#"credential = { headers = { "X-Api-Key" = "sk-live-inline" } }"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("inline secret values are not allowed"),
        "{err}"
    );
    let err = toml::from_str::<Server>(r#"credential = { bearer = "sk-live-inline" }"#);
    assert!(err.is_err());
}

#[tokio::test]
async fn the_client_token_and_cookie_never_reach_the_upstream() {
    let server = Server::start(|_, _| Reply::token("unused", 60)).await;
    let file = secret_file(TOKEN);
    let cred = credential(&format!(
        r#"{{ bearer_file = "{}" }}"#,
        file.path().display()
    ));
    let mut client = http::HeaderMap::new();
    client.insert("authorization", "Bearer CLIENT-TOKEN".parse().unwrap());
    client.insert("cookie", "sid=CLIENT-COOKIE".parse().unwrap());
    client.insert("proxy-authorization", "Basic CLIENT-PROXY".parse().unwrap());
    send_upstream(&server, &cred, &client, Some("CLIENT-TOKEN")).await;
    let seen = &server.upstream_requests()[0];
    assert_eq!(
        seen.headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    let everything = seen.everything();
    for leaked in ["CLIENT-TOKEN", "CLIENT-COOKIE", "CLIENT-PROXY"] {
        assert!(
            !everything.contains(leaked),
            "{leaked} reached the upstream"
        );
    }
    assert!(server.token_requests().is_empty());
}

#[test]
fn debug_output_of_secrets_and_errors_never_shows_the_value() {
    let file = secret_file(TOKEN);
    let secret = Secret::from_file(file.path()).unwrap();
    assert_eq!(format!("{secret:?}"), "[redacted]");
    assert_eq!(format!("{secret}"), "[redacted]");
    let text = format!(r#"{{ bearer_file = "{}" }}"#, file.path().display());
    let spec = spec(&text);
    let cred = UpstreamCredential::new(&spec, egress()).unwrap();
    let not_a_header = CredentialError::NotAHeaderValue {
        source_name: format!("file {}", file.path().display()),
    };
    for shown in [
        format!("{spec:?}"),
        format!("{cred:?}"),
        format!("{not_a_header:?}"),
        not_a_header.to_string(),
    ] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }
}
