//! The benchmark still runs end to end: a `--quick` run against the debug build of the
//! gateway produces every figure the README promises, the gateway with everything on
//! wrote an intact audit log with a record for every call, and the gateway with `[auth]`
//! refused requests without a good token. (It asserts that the figures exist and
//! are measurements, not how good they are: a debug build on a shared test machine says
//! nothing about performance, which the release benchmark alone measures.)

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn portcullis() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let exe = target.join("debug/portcullis");
    assert!(
        exe.exists(),
        "{} is missing: build the workspace first (cargo test --workspace does)",
        exe.display()
    );
    exe
}

fn positive(v: &Value, path: &str) -> f64 {
    let mut cur = v;
    for key in path.split('.') {
        cur = &cur[key];
    }
    let n = cur
        .as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number in the report"));
    assert!(n > 0.0, "{path} = {n}");
    n
}

#[test]
fn a_quick_run_reports_every_figure() {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis-bench"))
        .args([
            "--quick",
            "--json",
            "--no-build",
            "--sessions",
            "200",
            // Calls over HTTP are measured three times (`http`, `http-auth`, `full`):
            // fewer of them each time keep the test short.
            "--throughput-calls",
            "1000",
            "--warmup",
            "50",
            // Debug builds of the in-process parts are slow; a few hundred of each suffice
            // to show the figures are produced.
            "--decisions",
            "300",
            "--validations",
            "300",
            "--audit-records",
            "2000",
            "--audit-single",
            "50",
            "--jwt-validations",
            "300",
            "--portcullis",
        ])
        .arg(portcullis())
        .output()
        .expect("run the benchmark");
    assert!(
        out.status.success(),
        "benchmark failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    for transport in ["stdio", "http"] {
        for side in ["direct", "gateway"] {
            positive(&report, &format!("{transport}.{side}.latency.p50_us"));
            positive(
                &report,
                &format!("{transport}.{side}.throughput.calls_per_sec"),
            );
        }
        positive(&report, &format!("{transport}.throughput_ratio"));
    }
    positive(&report, "policy.first_match.p50_us");
    positive(&report, "policy.first_match_cel.p50_us");
    positive(&report, "policy.every_rule_tried.p50_us");
    positive(&report, "validation.latency.p50_us");
    for alg in ["rs256", "es256"] {
        positive(&report, &format!("jwt.{alg}.latency.p50_us"));
        positive(&report, &format!("jwt.{alg}.token_bytes"));
    }
    // The timed validations used the cached keys: one discovery, one JWKS fetch in all.
    assert_eq!(report["jwt"]["metadata_fetches"].as_u64(), Some(1));
    assert_eq!(report["jwt"]["jwks_fetches"].as_u64(), Some(1));
    for side in ["direct", "auth_off", "auth_on"] {
        positive(&report, &format!("http_auth.{side}.latency.p50_us"));
        positive(
            &report,
            &format!("http_auth.{side}.throughput.calls_per_sec"),
        );
    }
    positive(&report, "http_auth.throughput_ratio");
    positive(&report, "http_auth.token_bytes");
    positive(&report, "http_auth.jwks_fetches");
    // The auth-on gateway was not one that ignores its [auth].
    assert_eq!(
        report["http_auth"]["unauthenticated"]["status"].as_u64(),
        Some(401)
    );
    assert_eq!(
        report["http_auth"]["other_audience"]["status"].as_u64(),
        Some(401)
    );
    positive(&report, "audit.records_per_sec");
    positive(&report, "audit.single_append.p50_us");
    for transport in ["stdio", "http"] {
        for side in ["direct", "gateway", "all_on"] {
            positive(&report, &format!("full.{transport}.{side}.latency.p50_us"));
            positive(
                &report,
                &format!("full.{transport}.{side}.throughput.calls_per_sec"),
            );
        }
        positive(&report, &format!("full.{transport}.throughput_ratio"));
        let audit = &report["full"][transport]["audit"];
        let calls = positive(&report, &format!("full.{transport}.audit.calls"));
        assert_eq!(
            audit["written"].as_bool(),
            Some(true),
            "the all-on gateway wrote no audit records over {transport}: {audit}"
        );
        assert_eq!(audit["intact"].as_bool(), Some(true), "{audit}");
        assert!(
            positive(&report, &format!("full.{transport}.audit.records")) >= calls,
            "{audit}"
        );
    }
    let targets = report["targets"].as_array().expect("targets");
    let ids: Vec<&str> = targets.iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "stdio_added_p50_us",
            "stdio_throughput_ratio",
            "http_added_p50_us",
            "http_throughput_ratio",
            "idle_session_kib",
            "policy_p50_us",
            "policy_cel_p50_us",
            "validation_p50_us",
            "jwt_p50_us",
            "audit_records_per_sec"
        ]
    );
    assert!(
        targets
            .iter()
            .all(|t| t["figure"].as_f64().is_some_and(f64::is_finite))
    );
}
