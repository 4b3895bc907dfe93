//! Each validation error, with the exact line and column it points at.

use super::{SERVER, error, errors, parse};

#[test]
fn unknown_key_is_reported_at_the_key_by_toml() {
    assert_eq!(
        error("[gateway]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n"),
        "3:1: unknown field `lisen`, expected one of `listen`, `public_url`, `client_metadata_url`, `allowed_origins`, `allowed_hosts`, `max_message_bytes`, `request_timeout`, `session_idle_timeout`, `max_sessions`, `worker_threads`, `state`, `insecure_no_auth`, `session_lifetime`, `tls`, `behind_proxy`"
    );
}

#[test]
fn unknown_top_level_table_is_reported() {
    assert_eq!(
        error("[gatway]\nlisten = \"127.0.0.1:1\"\n"),
        "1:2: unknown field `gatway`, expected one of `gateway`, `auth`, `log`, `audit`, `limits`, `egress`, `approvals`, `content`, `servers`, `virtual`, `rules`"
    );
}

#[test]
fn an_unknown_definitions_mode_is_reported_with_the_choices() {
    assert_eq!(
        error(&format!("{SERVER}definitions = \"required\"\n")),
        "3:15: unknown definitions mode \"required\" for servers.files.definitions: use \"tofu\", \"strict\" or \"off\""
    );
}

#[test]
fn unknown_nested_key_is_reported_where_it_is() {
    let text = format!("{SERVER}env = {{ pass = [\"PATH\"], sett = {{ A = \"1\" }} }}\n");
    assert_eq!(
        error(&text),
        "3:26: unknown field `sett`, expected one of `pass`, `set`, `secrets`"
    );
}

#[test]
fn every_unknown_key_in_a_section_is_reported_and_the_rest_still_checked() {
    let text = "[gateway]\nlistn = 1\nlisten = \"nope\"\ntimeout = \"1s\"\n";
    assert_eq!(
        errors(text),
        [
            "2:1: unknown field `listn`, expected one of `listen`, `public_url`, `client_metadata_url`, `allowed_origins`, `allowed_hosts`, `max_message_bytes`, `request_timeout`, `session_idle_timeout`, `max_sessions`, `worker_threads`, `state`, `insecure_no_auth`, `session_lifetime`, `tls`, `behind_proxy`",
            "3:10: invalid listen address \"nope\": expected an IP address and port such as 127.0.0.1:8440 or [::1]:8440",
            "4:1: unknown field `timeout`, expected one of `listen`, `public_url`, `client_metadata_url`, `allowed_origins`, `allowed_hosts`, `max_message_bytes`, `request_timeout`, `session_idle_timeout`, `max_sessions`, `worker_threads`, `state`, `insecure_no_auth`, `session_lifetime`, `tls`, `behind_proxy`",
        ]
    );
}

#[test]
fn toml_syntax_error_is_one_diagnostic_with_position() {
    let e = error("[gateway]\nlisten = \"127.0.0.1:1\n");
    assert!(e.starts_with("2:"), "{e}");
}

#[test]
fn wrong_value_type_is_reported_at_the_value() {
    assert_eq!(
        error("[gateway]\nmax_sessions = \"many\"\n"),
        "2:16: invalid type: string \"many\", expected i64"
    );
}

#[test]
fn both_command_and_url_is_an_error_at_url() {
    let text = "[servers.files]\ncommand = [\"x\"]\nurl = \"http://127.0.0.1:1/mcp\"\n";
    assert_eq!(
        error(text),
        "3:7: server \"files\" has both `command` and `url`: use `command` for a stdio server or `url` for an HTTP server, not both"
    );
}

#[test]
fn neither_command_nor_url_is_an_error_at_the_server_name() {
    assert_eq!(
        error("[servers.files]\ntimeout = \"5s\"\n"),
        "1:10: server \"files\" needs `command` (a stdio server) or `url` (an HTTP server)"
    );
}

#[test]
fn stdio_only_keys_on_an_http_server_are_each_reported() {
    let text = "[servers.remote]\nurl = \"https://mcp.example.com/mcp\"\ncwd = \"/tmp\"\nenv = { pass = [\"PATH\"] }\ninstances = \"shared\"\nrestart = { max_backoff = \"1s\" }\n";
    assert_eq!(
        errors(text),
        [
            "3:7: `cwd` applies only to stdio servers (with `command`), but server \"remote\" has `url`",
            "4:7: `env` applies only to stdio servers (with `command`), but server \"remote\" has `url`",
            "5:13: `instances` applies only to stdio servers (with `command`), but server \"remote\" has `url`",
            "6:11: `restart` applies only to stdio servers (with `command`), but server \"remote\" has `url`",
        ]
    );
}

#[test]
fn bad_server_names_are_refused() {
    let msg = "use 1 to 64 lowercase letters, digits and '-'";
    assert_eq!(
        error("[servers.Files]\ncommand = [\"x\"]\n"),
        format!("1:10: invalid server name \"Files\": {msg}")
    );
    assert_eq!(
        error("[servers.\"a.b\"]\ncommand = [\"x\"]\n"),
        format!("1:10: invalid server name \"a.b\": {msg}")
    );
    let long = "a".repeat(65);
    assert_eq!(
        error(&format!("[servers.{long}]\ncommand = [\"x\"]\n")),
        format!("1:10: invalid server name \"{long}\": {msg}")
    );
    assert!(
        parse(&format!(
            "[servers.{}]\ncommand = [\"x\"]\n",
            "a".repeat(64)
        ))
        .is_ok()
    );
}

#[test]
fn virtual_named_like_a_server_collides() {
    let text = format!("{SERVER}[virtual.files]\nservers = [\"files\"]\n");
    assert_eq!(
        error(&text),
        "3:10: virtual server \"files\" has the same name as server \"files\": both would be served at /mcp/files"
    );
}

#[test]
fn bad_virtual_name_is_refused() {
    let text = format!("{SERVER}[virtual.All_Tools]\nservers = [\"files\"]\n");
    assert_eq!(
        error(&text),
        "3:10: invalid virtual server name \"All_Tools\": use 1 to 64 lowercase letters, digits and '-'"
    );
}

#[test]
fn unknown_duplicate_and_missing_virtual_members() {
    let text = format!(
        "{SERVER}[servers.tickets]\nurl = \"http://127.0.0.1:1/mcp\"\n[virtual.all]\nservers = [\"files\", \"fles\", \"files\"]\n"
    );
    assert_eq!(
        errors(&text),
        [
            "6:21: unknown server \"fles\" in virtual \"all\" (known: files, tickets)",
            "6:29: server \"files\" is listed twice in virtual \"all\"",
        ]
    );
    let text = format!("{SERVER}[virtual.all]\nservers = []\n");
    assert_eq!(
        error(&text),
        "4:11: virtual \"all\" must join at least one server"
    );
    let text = format!("{SERVER}[virtual.all]\non_upstream_failure = \"omit\"\n");
    assert_eq!(error(&text), "3:1: missing field `servers`");
}

#[test]
fn unknown_server_in_a_rule_lists_the_known_ones() {
    let text = format!(
        "{SERVER}[servers.tickets]\nurl = \"http://127.0.0.1:1/mcp\"\n\n[[rules]]\nserver = \"files\"\neffect = \"allow\"\n\n[[rules]]\nserver = \"tickets\"\neffect = \"allow\"\n\n[[rules]]\n  server = \"fles\"\neffect = \"deny\"\n"
    );
    assert_eq!(
        error(&text),
        "15:12: unknown server \"fles\" in rule 3 (known: files, tickets)"
    );
}

#[test]
fn unknown_server_with_no_servers_says_so() {
    assert_eq!(
        error("[[rules]]\nserver = \"files\"\neffect = \"allow\"\n"),
        "2:10: unknown server \"files\" in rule 1 (no servers are configured)"
    );
}

#[test]
fn a_rule_naming_a_virtual_server_is_refused() {
    let text = format!(
        "{SERVER}[virtual.all]\nservers = [\"files\"]\n[[rules]]\nserver = \"all\"\neffect = \"allow\"\n"
    );
    assert_eq!(
        error(&text),
        "6:10: \"all\" in rule 1 is a virtual server: rules name the servers it joins (known: files)"
    );
}

#[test]
fn bad_globs_carry_the_glob_error() {
    let text =
        format!("{SERVER}[[rules]]\ntools = [\"read_*\", \"write_[ab\"]\neffect = \"deny\"\n");
    assert_eq!(
        error(&text),
        "4:20: bad glob \"write_[ab\" in rule 1: unclosed `[` at character 7 (escape a literal bracket as `\\[`)"
    );
    let text = format!("{SERVER}[[rules]]\nresources = [\"file:///\\\\\"]\neffect = \"deny\"\n");
    assert_eq!(
        error(&text),
        "4:14: bad glob \"file:///\\\" in rule 1: trailing `\\` at character 9 escapes nothing (write `\\\\` for a backslash)"
    );
}

#[test]
fn empty_name_lists_in_rules_are_refused() {
    let text = format!("{SERVER}[[rules]]\nserver = \"files\"\nprompts = []\neffect = \"allow\"\n");
    assert_eq!(
        error(&text),
        "5:11: `prompts = []` in rule 1 matches nothing: list at least one name or glob, or leave the key out"
    );
}

#[test]
fn rule_effect_is_required_and_checked() {
    let text = format!("{SERVER}[[rules]]\nserver = \"files\"\n");
    assert_eq!(error(&text), "3:1: missing field `effect`");
    let text = format!("{SERVER}[[rules]]\neffect = \"ask\"\n");
    assert_eq!(
        error(&text),
        "4:10: unknown variant `ask`, expected one of `allow`, `deny`, `consent`"
    );
}

#[test]
fn bad_durations_are_reported_with_the_key() {
    assert_eq!(
        error("[gateway]\nrequest_timeout = \"60\"\n"),
        "2:19: invalid duration \"60\" for gateway.request_timeout: missing unit after 60 (use ms, s, m or h, e.g. \"60s\")"
    );
    assert_eq!(
        error("[gateway]\nrequest_timeout = 60\n"),
        "2:19: a duration needs a unit: write \"60s\" or \"60ms\", not 60"
    );
    assert_eq!(
        error("[gateway]\nsession_idle_timeout = \"0s\"\n"),
        "2:24: gateway.session_idle_timeout must be more than 0"
    );
    assert_eq!(
        error("[gateway]\nsession_idle_timeout = \"25h\"\n"),
        "2:24: gateway.session_idle_timeout must be at most 24h, not \"25h\""
    );
    let text = format!("{SERVER}timeout = \"5 s\"\nrestart = {{ max_backoff = \"1d\" }}\n");
    assert_eq!(
        errors(&text),
        [
            "3:11: invalid duration \"5 s\" for servers.files.timeout: missing unit after 5 (use ms, s, m or h, e.g. \"5s\")",
            "4:27: invalid duration \"1d\" for servers.files.restart.max_backoff: unknown unit \"d\" (use ms, s, m or h)",
        ]
    );
}

#[test]
fn bad_sizes_are_reported_with_the_range() {
    assert_eq!(
        error("[gateway]\nmax_message_bytes = \"4TB\"\n"),
        "2:21: invalid size \"4TB\" for gateway.max_message_bytes: unknown size unit \"TB\" (use B, KiB, MiB, GiB, KB, MB, GB, or K, M, G for KiB, MiB, GiB)"
    );
    assert_eq!(
        error("[gateway]\nmax_message_bytes = 100\n"),
        "2:21: gateway.max_message_bytes must be between 1KiB and 64MiB, not 100B"
    );
    assert_eq!(
        error("[gateway]\nmax_message_bytes = \"65MiB\"\n"),
        "2:21: gateway.max_message_bytes must be between 1KiB and 64MiB, not 65MiB"
    );
    assert_eq!(
        error("[gateway]\nmax_message_bytes = -1\n"),
        "2:21: invalid size -1 for gateway.max_message_bytes: a size cannot be negative"
    );
}

#[test]
fn bad_listen_address_is_refused() {
    assert_eq!(
        error("[gateway]\nlisten = \"localhost:8440\"\n"),
        "2:10: invalid listen address \"localhost:8440\": expected an IP address and port such as 127.0.0.1:8440 or [::1]:8440"
    );
}

#[test]
fn bad_urls_are_refused() {
    assert_eq!(
        error("[gateway]\npublic_url = \"https://mcp.example.com/?x=1\"\n"),
        "2:14: gateway.public_url must not have a ?query: \"https://mcp.example.com/?x=1\""
    );
    assert_eq!(
        error("[gateway]\npublic_url = \"ftp://mcp.example.com\"\n"),
        "2:14: gateway.public_url must be an http:// or https:// URL, not \"ftp://mcp.example.com\""
    );
    assert_eq!(
        error("[servers.t]\nurl = \"https://user:pw@example.com/mcp\"\n"),
        "2:7: servers.t.url must not carry credentials (user:password@): \"https://user:pw@example.com/mcp\""
    );
    assert_eq!(
        error("[servers.t]\nurl = \"https://example.com/mcp#frag\"\n"),
        "2:7: servers.t.url must not have a #fragment: \"https://example.com/mcp#frag\""
    );
    assert_eq!(
        error("[servers.t]\nurl = \"/mcp\"\n"),
        "2:7: invalid URL \"/mcp\" for servers.t.url: expected an absolute URL such as https://host/path"
    );
}

#[test]
fn bad_origins_and_hosts_are_refused() {
    assert_eq!(
        error("[gateway]\nallowed_origins = [\"https://app.example.com/path\"]\n"),
        "2:20: allowed origin \"https://app.example.com/path\" must be just scheme://host[:port], with no path or query"
    );
    assert_eq!(
        error("[gateway]\nallowed_origins = [\"https://ok.example.com\", \"*\"]\n"),
        "2:46: allowed origin \"*\" is not an exact origin: list each origin as scheme://host[:port]"
    );
    assert_eq!(
        error("[gateway]\nallowed_hosts = [\"https://mcp.example.com\"]\n"),
        "2:18: invalid allowed host \"https://mcp.example.com\": write just the host (and :port), without a scheme"
    );
    assert_eq!(
        error("[gateway]\nallowed_hosts = [\"mcp.example.com/x\"]\n"),
        "2:18: invalid allowed host \"mcp.example.com/x\": expected a host name or IP address, optionally with :port (IPv6 in [ ]), and no path"
    );
}

#[test]
fn empty_command_and_empty_program_are_refused() {
    assert_eq!(
        error("[servers.files]\ncommand = []\n"),
        "2:11: servers.files.command must not be empty: give the program and its arguments"
    );
    assert_eq!(
        error("[servers.files]\ncommand = [\"\", \"x\"]\n"),
        "2:12: servers.files.command starts with an empty program name"
    );
}

#[test]
fn bad_environment_names_are_refused() {
    let text = format!(
        "{SERVER}env = {{ pass = [\"PATH\", \"1BAD\"], set = {{ \"A-B\" = \"1\", PATH = \"/bin\" }} }}\n"
    );
    assert_eq!(
        errors(&text),
        [
            "3:25: invalid environment variable name \"1BAD\" in servers.files.env.pass: use letters, digits and '_', not starting with a digit",
            "3:42: invalid environment variable name \"A-B\" in servers.files.env.set: use letters, digits and '_', not starting with a digit",
            "3:55: environment variable \"PATH\" is both passed and set in servers.files.env: keep one",
        ]
    );
}

#[test]
fn unknown_protocol_version_lists_the_known_ones() {
    let text = format!("{SERVER}protocol = \"2025-01-01\"\n");
    assert_eq!(
        error(&text),
        "3:12: unknown protocol version \"2025-01-01\" for servers.files.protocol: use \"auto\" or one of \"2024-11-05\", \"2025-03-26\", \"2025-06-18\", \"2025-11-25\", \"2026-07-28\""
    );
}

#[test]
fn unknown_instances_mode_is_refused() {
    let text = format!("{SERVER}instances = \"pooled\"\n");
    assert_eq!(
        error(&text),
        "3:13: unknown variant `pooled`, expected `per-session` or `shared`"
    );
}

#[test]
fn max_sessions_must_be_positive_and_bounded() {
    assert_eq!(
        error("[gateway]\nmax_sessions = 0\n"),
        "2:16: gateway.max_sessions must be between 1 and 1000000, not 0"
    );
}

#[test]
fn worker_threads_must_be_positive_and_bounded() {
    assert_eq!(
        error("[gateway]\nworker_threads = 0\n"),
        "2:18: gateway.worker_threads must be between 1 and 1024, not 0"
    );
    assert_eq!(
        error("[gateway]\nworker_threads = 5000\n"),
        "2:18: gateway.worker_threads must be between 1 and 1024, not 5000"
    );
}

#[test]
fn bad_log_settings_are_refused() {
    assert_eq!(
        error("[log]\nformat = \"xml\"\n"),
        "2:10: unknown variant `xml`, expected `text` or `json`"
    );
    let e = error("[log]\nlevel = \"info,portcullis=loud\"\n");
    assert!(
        e.starts_with("2:9: invalid log.level \"info,portcullis=loud\": "),
        "{e}"
    );
    assert_eq!(
        error("[log]\nfile = \"\"\n"),
        "2:8: log.file must not be empty (leave it out to log to stderr)"
    );
}

#[test]
fn servers_and_rules_must_have_the_right_shape() {
    assert_eq!(
        error("servers = [\"files\"]\n"),
        "1:11: `servers` must be a table of named tables: write [servers.<name>]"
    );
    assert_eq!(
        error("[rules]\neffect = \"allow\"\n"),
        "1:1: `rules` must be an array of tables: write each rule as [[rules]]"
    );
}

#[test]
fn all_errors_are_collected_and_reported_in_file_order() {
    let text = "[[rules]]\nserver = \"nope\"\neffect = \"allow\"\n\n[gateway]\nlisten = \"bad\"\nmax_sessions = 0\n\n[servers.A]\ncommand = [\"x\"]\n";
    let e = errors(text);
    let lines: Vec<&str> = e
        .iter()
        .map(|d| d.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(lines, ["2", "6", "7", "9"], "{e:#?}");
}

#[test]
fn diagnostics_display_as_file_line_column_message() {
    let err = parse("[gateway]\nlisten = \"bad\"\nmax_sessions = 0\n").unwrap_err();
    let shown = err.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("test.toml:2:10: invalid listen address"),
        "{shown}"
    );
    assert!(
        lines[1].starts_with("test.toml:3:16: gateway.max_sessions"),
        "{shown}"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    // "é" is two bytes but one column: the bad name after it is at column 26, not 27.
    let text = format!("{SERVER}env = {{ set = {{ A = \"é\", \"1X\" = \"y\" }} }}\n");
    assert_eq!(
        error(&text),
        "3:26: invalid environment variable name \"1X\" in servers.files.env.set: use letters, digits and '_', not starting with a digit"
    );
}

#[test]
fn duplicate_server_tables_are_a_toml_error_at_the_second() {
    let text = "[servers.x]\ncommand = [\"a\"]\n[servers.x]\nurl = \"http://127.0.0.1:1\"\n";
    assert_eq!(error(text), "3:10: duplicate key");
}

#[test]
fn misspelt_rule_and_virtual_keys_are_reported() {
    let text = format!(
        "{SERVER}[virtual.all]\nservers = [\"files\"]\non_failure = \"fail\"\n[[rules]]\nserver = \"files\"\ntool = [\"x\"]\neffect = \"allow\"\n"
    );
    assert_eq!(
        errors(&text),
        [
            "5:1: unknown field `on_failure`, expected `servers` or `on_upstream_failure`",
            "8:1: unknown field `tool`, expected one of `server`, `tools`, `prompts`, `resources`, `principals`, `when`, `scopes`, `paths`, `roots`, `urls`, `hosts`, `max_arg_bytes`, `rate`, `burst`, `effect`, `consent`",
        ]
    );
}

#[test]
fn a_client_metadata_url_must_be_https_with_a_path() {
    assert_eq!(
        error("[gateway]\nclient_metadata_url = \"http://gw.example.com/doc.json\"\n"),
        "2:23: gateway.client_metadata_url must be https (authorization servers fetch it): \"http://gw.example.com/doc.json\""
    );
    assert_eq!(
        error("[gateway]\nclient_metadata_url = \"https://gw.example.com/\"\n"),
        "2:23: gateway.client_metadata_url needs a path (e.g. /oauth/client-metadata.json): \"https://gw.example.com/\""
    );
}

#[test]
fn per_user_oauth_behind_auth_needs_a_browser_sign_in() {
    let text = "[auth]\nissuer = \"https://idp.example.com\"\n\n\
                [servers.tickets]\nurl = \"https://tickets.example.com/mcp\"\n\
                credential = { oauth = {} }\n";
    let e = error(text);
    assert!(
        e.starts_with("1:2: servers tickets use per-user OAuth"),
        "{e}"
    );
    assert!(e.contains("auth.sign_in"), "{e}");
    let fixed = text.replace(
        "[servers",
        "sign_in = { client_id = \"portcullis-browser\" }\n\n[servers",
    );
    super::ok(&fixed);
}
