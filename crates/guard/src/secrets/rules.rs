//! Credentials with a format of their own: a fixed prefix, a fixed length, a checksum-like
//! shape. One [`Spec`] per format; a kind may have several. The context rules (assignments,
//! URLs with passwords, private keys, JWTs, bearer credentials) are in `context.rs`.
//!
//! Patterns are for the `regex` crate (linear time) and are written with ASCII classes;
//! `\b` is made ASCII-only when compiled, so non-ASCII text never drops the engine to its
//! slower Unicode path. A pattern's first capture group that took part in the match is the
//! secret (what the placeholder replaces); without one, the whole match is. A token that may
//! end in `-` or `_` cannot end with `\b`, so its pattern ends with `(?:[^…]|$)` instead and
//! puts the token in a group.

use std::ops::Range;

/// What a rule's extra check sees of a match.
pub(crate) struct Ctx<'t> {
    /// The whole text searched.
    pub text: &'t str,
    /// The whole match.
    pub whole: Range<usize>,
    /// The secret inside it.
    pub secret: Range<usize>,
}

impl<'t> Ctx<'t> {
    pub fn secret(&self) -> &'t str {
        &self.text[self.secret.clone()]
    }
}

/// One detection rule.
pub(crate) struct Spec {
    /// The kind, as the placeholder names it: `[REDACTED:<kind>]`.
    pub kind: &'static str,
    /// Lowercase words, one of which (ASCII case-insensitively) must be in the text for the
    /// pattern to run at all: the prefilter.
    pub keywords: &'static [&'static str],
    pub pattern: &'static str,
    /// Shannon entropy, in bits per byte, the secret must reach (0: no check). For formats
    /// whose shape alone also fits placeholders such as `ghp_xxxxxxxx…`.
    pub min_entropy: f32,
    /// A further check on the match (`None`: the pattern and entropy decide).
    pub check: Option<fn(&Ctx<'_>) -> bool>,
    /// Every match starts with one of the keywords and is at most [`ANCHORED_WINDOW`]
    /// bytes long: the pattern is tried only where a keyword occurs, anchored there, instead
    /// of over the whole text. For the rules whose keywords are common words.
    pub anchored: bool,
}

/// The longest match of an anchored rule, in bytes (their patterns bound every repetition).
pub(crate) const ANCHORED_WINDOW: usize = 512;

/// A rule decided by its pattern (and an entropy floor) alone.
const fn spec(
    kind: &'static str,
    keywords: &'static [&'static str],
    pattern: &'static str,
    min_entropy: f32,
) -> Spec {
    Spec {
        kind,
        keywords,
        pattern,
        min_entropy,
        check: None,
        anchored: false,
    }
}

/// The secret has a digit (words of the right length have none).
fn with_digit(ctx: &Ctx<'_>) -> bool {
    super::entropy::has_digit(ctx.secret())
}

/// Provider formats, in the order overlapping findings are preferred (earlier first, and
/// every one before the context rules).
pub(crate) const PROVIDERS: &[Spec] = &[
    // ---- cloud providers
    spec(
        "aws-access-key-id",
        &["akia", "asia", "abia", "acca"],
        r"\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        3.0,
    ),
    spec(
        "aws-secret-access-key",
        &["aws", "secretaccesskey", "secret_access_key"],
        r#"(?i)(?:aws[a-z0-9_.-]{0,20}?(?:secret|sk)|secret_?access_?key)[a-z0-9_.-]{0,20}["']?[ \t]*[:=][ \t]*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        3.5,
    ),
    spec(
        "gcp-service-account-key",
        &["private_key_id"],
        r#""private_key_id"[ \t]*:[ \t]*"([a-f0-9]{40})""#,
        3.0,
    ),
    spec(
        "google-api-key",
        &["aiza"],
        r"\b(AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)",
        3.0,
    ),
    spec(
        "google-oauth-client-secret",
        &["gocspx-"],
        r"\b(GOCSPX-[A-Za-z0-9_-]{28})(?:[^A-Za-z0-9_-]|$)",
        3.0,
    ),
    spec(
        "google-oauth-token",
        &["ya29."],
        r"\b(ya29\.[0-9A-Za-z_-]{30,})",
        3.0,
    ),
    spec(
        "azure-storage-key",
        &["accountkey"],
        r#"(?i)AccountKey["']?[ \t]*[:=][ \t]*["']?([A-Za-z0-9+/]{86}==)"#,
        3.5,
    ),
    spec(
        "azure-ad-client-secret",
        &["q~"],
        r"(?:^|[^A-Za-z0-9_~.-])([A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})(?:[^A-Za-z0-9_~.-]|$)",
        3.0,
    ),
    spec(
        "azure-sas-token",
        &["sig="],
        r"[?&]sig=([A-Za-z0-9%+/]{43,120})",
        3.5,
    ),
    spec(
        "alibaba-access-key",
        &["ltai"],
        r"\b(LTAI[A-Za-z0-9]{12,20})\b",
        3.0,
    ),
    spec(
        "digitalocean-token",
        &["dop_v1_", "doo_v1_", "dor_v1_"],
        r"\b(do[opr]_v1_[a-f0-9]{64})\b",
        3.0,
    ),
    spec(
        "heroku-api-key",
        &["hrku-"],
        r"\b(HRKU-[A-Za-z0-9_-]{60})",
        3.0,
    ),
    spec(
        "heroku-api-key",
        &["heroku"],
        r#"(?i)heroku[a-z0-9_ .:-]{0,30}?(?:key|token|secret)["']?[ \t]*[:=][ \t]*["']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"#,
        3.0,
    ),
    // ---- version control
    spec(
        "github-token",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        // No `\b` on either side: the prefix is distinctive enough, and a token glued to the
        // text around it (`…3Yghp_…api`) is still one.
        r"((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255})",
        3.0,
    ),
    spec(
        "github-token",
        &["github_pat_"],
        r"\b(github_pat_[A-Za-z0-9_]{22,255})\b",
        3.0,
    ),
    spec(
        "gitlab-token",
        &[
            "glpat-", "gldt-", "glft-", "glsoat-", "glcbt-", "glimt-", "glagent-", "gloas-",
        ],
        r"\b((?:glpat|gldt|glft|glsoat|glcbt|glimt|glagent|gloas)-[A-Za-z0-9_.-]{20,})",
        3.0,
    ),
    spec(
        "gitlab-runner-token",
        &["glrt-", "gr1348941"],
        r"\b((?:glrt-|GR1348941)[A-Za-z0-9_.-]{20,})",
        3.0,
    ),
    spec(
        "gitlab-pipeline-trigger-token",
        &["glptt-"],
        r"\b(glptt-[a-f0-9]{40})\b",
        3.0,
    ),
    spec(
        "bitbucket-app-password",
        &["atbb"],
        r"\b(ATBB[A-Za-z0-9_=.-]{28,})",
        3.5,
    ),
    spec(
        "atlassian-api-token",
        &["atatt3", "atctt3"],
        r"\b(AT(?:ATT|CTT)3[A-Za-z0-9_=-]{100,})",
        3.5,
    ),
    // ---- CI/CD and infrastructure
    spec(
        "circleci-token",
        &["ccipat_", "cciprj_"],
        r"\b(CCIP(?:AT|RJ)_[A-Za-z0-9]{22}_[a-f0-9]{40})\b",
        3.0,
    ),
    spec(
        "buildkite-token",
        &["bkua_"],
        r"\b(bkua_[a-f0-9]{40})\b",
        3.0,
    ),
    spec(
        "terraform-cloud-token",
        &[".atlasv1."],
        r"\b([A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70})",
        3.5,
    ),
    spec(
        "vault-token",
        &["hvs.", "hvb.", "hvr."],
        r"\b(hv[sbr]\.[A-Za-z0-9_-]{24,})",
        3.5,
    ),
    spec(
        "doppler-token",
        &[
            "dp.pt.",
            "dp.st.",
            "dp.sa.",
            "dp.ct.",
            "dp.scim.",
            "dp.audit.",
        ],
        r"\b(dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44})\b",
        3.0,
    ),
    spec("pulumi-token", &["pul-"], r"\b(pul-[a-f0-9]{40})\b", 3.0),
    spec(
        "sonarqube-token",
        &["sqp_", "squ_", "sqa_"],
        r"\b(sq[pua]_[a-f0-9]{40})\b",
        3.0,
    ),
    // ---- chat
    Spec {
        check: Some(with_digit),
        ..spec(
            "slack-token",
            &[
                "xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xoxe-", "xoxe.",
            ],
            r"\b((?:xoxe\.)?xox[abposre]-[0-9A-Za-z-]{10,250})",
            3.0,
        )
    },
    spec(
        "slack-app-token",
        &["xapp-"],
        r"\b(xapp-[0-9]-[A-Z0-9]+-[0-9]+-[A-Za-z0-9]{20,})",
        3.0,
    ),
    spec(
        "slack-webhook-url",
        &["hooks.slack.com"],
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9+/_-]{20,})",
        3.0,
    ),
    spec(
        "discord-webhook-url",
        &["discord"],
        r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/([A-Za-z0-9_-]{60,68})",
        3.5,
    ),
    spec(
        "discord-bot-token",
        &["discord"],
        r"\b([MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38})(?:[^A-Za-z0-9_-]|$)",
        3.5,
    ),
    spec(
        "telegram-bot-token",
        &[":aa"],
        // Also after `bot` in an API URL, so after any non-digit.
        r"(?:^|[^0-9])([0-9]{8,10}:AA[A-Za-z0-9_-]{33})(?:[^A-Za-z0-9_-]|$)",
        3.0,
    ),
    // ---- payments
    spec(
        "stripe-secret-key",
        &["sk_live_", "sk_test_"],
        r"\b(sk_(?:live|test)_[A-Za-z0-9]{20,247})\b",
        3.0,
    ),
    spec(
        "stripe-restricted-key",
        &["rk_live_", "rk_test_"],
        r"\b(rk_(?:live|test)_[A-Za-z0-9]{20,247})\b",
        3.0,
    ),
    spec(
        "stripe-webhook-secret",
        &["whsec_"],
        r"\b(whsec_[A-Za-z0-9+/=]{32,})",
        3.0,
    ),
    spec(
        "square-access-token",
        &["eaaa", "sq0atp-"],
        r"\b(EAAA[A-Za-z0-9_-]{60}|sq0atp-[A-Za-z0-9_-]{22})(?:[^A-Za-z0-9_-]|$)",
        3.5,
    ),
    spec(
        "square-oauth-secret",
        &["sq0csp-"],
        r"\b(sq0csp-[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)",
        3.5,
    ),
    spec(
        "paypal-braintree-token",
        &["access_token$production$", "access_token$sandbox$"],
        r"(access_token\$(?:production|sandbox)\$[a-z0-9]{16}\$[a-f0-9]{32})",
        3.0,
    ),
    spec(
        "paypal-client-secret",
        &["paypal"],
        r#"(?i)paypal[a-z0-9_ .:\t\r\n-]{0,40}?secret["']?[ \t]*[:=][ \t]*["']?([A-Za-z0-9_-]{64,100})(?:[^A-Za-z0-9_-]|$)"#,
        3.5,
    ),
    // ---- LLM providers
    spec(
        "openai-api-key",
        &["t3blbkfj"],
        r"\b(sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,250}T3BlbkFJ[A-Za-z0-9_-]{20,250})(?:[^A-Za-z0-9_-]|$)",
        3.5,
    ),
    spec(
        "openai-api-key",
        &["sk-proj-", "sk-svcacct-", "sk-admin-"],
        r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,250})(?:[^A-Za-z0-9_-]|$)",
        3.5,
    ),
    spec(
        "anthropic-api-key",
        &["sk-ant-"],
        r"\b(sk-ant-(?:api|admin|sid)[0-9]{2}-[A-Za-z0-9_-]{32,250})(?:[^A-Za-z0-9_-]|$)",
        3.5,
    ),
    spec(
        "openrouter-api-key",
        &["sk-or-v1-"],
        r"\b(sk-or-v1-[a-f0-9]{64})\b",
        3.0,
    ),
    Spec {
        check: Some(with_digit),
        ..spec(
            "sk-api-key",
            &["sk-"],
            r"\b(sk-[A-Za-z0-9]{32,64})(?:[^A-Za-z0-9_-]|$)",
            3.5,
        )
    },
    spec(
        "huggingface-token",
        &["hf_", "api_org_"],
        r"\b((?:hf|api_org)_[A-Za-z0-9]{34})\b",
        3.5,
    ),
    spec("groq-api-key", &["gsk_"], r"\b(gsk_[A-Za-z0-9]{52})\b", 3.5),
    spec("xai-api-key", &["xai-"], r"\b(xai-[A-Za-z0-9]{80})\b", 3.5),
    spec(
        "replicate-token",
        &["r8_"],
        r"\b(r8_[A-Za-z0-9]{37})\b",
        3.5,
    ),
    spec(
        "perplexity-api-key",
        &["pplx-"],
        r"\b(pplx-[A-Za-z0-9]{48})\b",
        3.5,
    ),
    spec(
        "langsmith-api-key",
        &["lsv2_"],
        r"\b(lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10})\b",
        3.0,
    ),
    spec(
        "pinecone-api-key",
        &["pcsk_"],
        r"\b(pcsk_[A-Za-z0-9_]{50,})",
        3.5,
    ),
    // ---- package registries
    spec("npm-token", &["npm_"], r"\b(npm_[A-Za-z0-9]{36})\b", 3.5),
    spec(
        "pypi-token",
        &["pypi-ageichlwas5vcmc", "pypi-agendgvzdc5wexbplm9yzw"],
        r"\b(pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,})",
        3.5,
    ),
    spec(
        "rubygems-token",
        &["rubygems_"],
        r"\b(rubygems_[a-f0-9]{48})\b",
        3.0,
    ),
    spec(
        "dockerhub-token",
        &["dckr_pat_", "dckr_oat_"],
        r"\b(dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,})",
        3.5,
    ),
    spec("nuget-api-key", &["oy2"], r"\b(oy2[a-z0-9]{43})\b", 3.5),
    // ---- email, messaging and SaaS APIs
    spec(
        "sendgrid-api-key",
        &["sg."],
        r"\b(SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)",
        3.5,
    ),
    spec("mailgun-api-key", &["key-"], r"\b(key-[0-9a-f]{32})\b", 3.0),
    spec(
        "mailchimp-api-key",
        &["-us"],
        r"\b([0-9a-f]{32}-us[0-9]{1,2})\b",
        3.0,
    ),
    spec("twilio-api-key", &["sk"], r"\b(SK[0-9a-f]{32})\b", 3.0),
    spec(
        "shopify-token",
        &["shpat_", "shpss_", "shpca_", "shppa_"],
        r"\b(shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32})\b",
        3.0,
    ),
    spec(
        "linear-api-key",
        &["lin_api_"],
        r"\b(lin_api_[A-Za-z0-9]{40})\b",
        3.5,
    ),
    spec(
        "notion-token",
        &["ntn_", "secret_"],
        r"\b(ntn_[0-9]{11}[A-Za-z0-9]{35}|secret_[A-Za-z0-9]{43})\b",
        3.5,
    ),
    spec(
        "newrelic-api-key",
        &["nrak-", "nrii-", "nrjs-"],
        r"\b(NR(?:AK|II|JS)-[A-Za-z0-9]{27,32})\b",
        3.0,
    ),
    spec(
        "sentry-token",
        &["sntrys_", "sntryu_"],
        r"\b(sntry[su]_[A-Za-z0-9_+/=-]{40,})",
        3.5,
    ),
    spec(
        "databricks-token",
        &["dapi"],
        r"\b(dapi[a-f0-9]{32}(?:-[0-9])?)\b",
        3.0,
    ),
    spec(
        "tailscale-key",
        &["tskey-"],
        r"\b(tskey-[a-z]+-[A-Za-z0-9]{8,}-[A-Za-z0-9]{16,})",
        3.0,
    ),
    spec(
        "postman-api-key",
        &["pmak-"],
        r"\b(PMAK-[a-f0-9]{24}-[a-f0-9]{34})\b",
        3.0,
    ),
    spec(
        "supabase-token",
        &["sbp_", "sb_secret_"],
        r"\b(sbp_[a-f0-9]{40}|sb_secret_[A-Za-z0-9_-]{20,})",
        3.0,
    ),
    spec(
        "grafana-token",
        &["glsa_", "glc_"],
        r"\b(glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2})",
        3.5,
    ),
    spec(
        "airtable-token",
        &["pat"],
        r"\b(pat[A-Za-z0-9]{14}\.[a-f0-9]{64})\b",
        3.0,
    ),
    spec(
        "age-secret-key",
        &["age-secret-key-1"],
        r"\b(AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})\b",
        3.0,
    ),
    spec(
        "onepassword-token",
        &["ops_eyj"],
        r"\b(ops_eyJ[A-Za-z0-9+/=_-]{100,})",
        3.5,
    ),
    spec(
        "mapbox-secret-token",
        &["sk.eyj"],
        r"\b(sk\.eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,})",
        3.5,
    ),
];
