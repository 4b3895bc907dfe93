//! The HTTP headers of the 2026-07-28 protocol that mirror the body: `Mcp-Name` and the
//! `Mcp-Param-<Name>` headers a tool asks for with `x-mcp-header` in its input schema.
//!
//! Intermediaries route and authorize on headers without reading bodies, so a header that
//! disagrees with the body is an attack on whoever trusts it: the gateway refuses it (HTTP
//! 400, -32020) and decides its own policy on the body only. Values that are not plain
//! printable ASCII travel as `=?base64?<UTF-8 in base64>?=`; only the canonical encoding is
//! accepted, so one value has exactly one spelling.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_wire::{ErrorObject, codes};
use serde_json::Value;

/// Decodes a header value: surrounding whitespace is not part of it (RFC 9110 §5.5), and
/// `=?base64?…?=` is decoded. None for a malformed encoding.
pub fn decode_value(raw: &str) -> Option<String> {
    let v = raw.trim_matches([' ', '\t']);
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => {
            let bytes = STANDARD.decode(b64).ok()?;
            (STANDARD.encode(&bytes) == b64).then_some(())?;
            String::from_utf8(bytes).ok()
        }
        None => Some(v.to_owned()),
    }
}

/// Encodes a value for a header (the inverse of [`decode_value`]).
pub fn encode_value(v: &str) -> String {
    let sentinel_like = v.starts_with("=?base64?") && v.ends_with("?=");
    let plain = v.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !v.starts_with([' ', '\t'])
        && !v.ends_with([' ', '\t'])
        && !sentinel_like;
    if plain {
        v.to_owned()
    } else {
        format!("=?base64?{}?=", STANDARD.encode(v.as_bytes()))
    }
}

/// One `x-mcp-header` annotation: the argument it mirrors and the header that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// Path of property names from `arguments` to the value.
    pub path: Vec<String>,
    /// The `<Name>` of `Mcp-Param-<Name>`.
    pub name: String,
}

/// The annotations of a tool's input schema. Only properties reachable through a plain
/// chain of `properties` count, and only on string, integer and boolean properties (the
/// protocol's rule: a value behind `items`, `oneOf` or `$ref` has no single place).
pub fn param_headers(input_schema: &Value) -> Vec<ParamHeader> {
    let mut out = Vec::new();
    collect(input_schema, &mut Vec::new(), &mut out, 0);
    out
}

fn collect(schema: &Value, path: &mut Vec<String>, out: &mut Vec<ParamHeader>, depth: usize) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    if depth > 32 {
        return;
    }
    for (key, prop) in props {
        path.push(key.clone());
        let scalar = matches!(
            prop.get("type").and_then(Value::as_str),
            Some("string" | "integer" | "boolean")
        );
        if let Some(name) = prop.get("x-mcp-header").and_then(Value::as_str)
            && scalar
            && !name.is_empty()
        {
            out.push(ParamHeader {
                path: path.clone(),
                name: name.to_owned(),
            });
        }
        collect(prop, path, out, depth + 1);
        path.pop();
    }
}

/// The header form of an argument value; None for values no header carries (absent, null).
pub fn render(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lookup<'a>(arguments: Option<&'a Value>, path: &[String]) -> Option<&'a Value> {
    let mut cur = arguments?;
    for key in path {
        cur = cur.get(key)?;
    }
    (!cur.is_null()).then_some(cur)
}

fn same(header: &str, body: &Value) -> bool {
    match body {
        // Integers compare as numbers: `42` and `42.0` are one value.
        Value::Number(n) => header
            .parse::<f64>()
            .ok()
            .zip(n.as_f64())
            .is_some_and(|(h, b)| h == b),
        other => render(other).is_some_and(|b| b == header),
    }
}

/// Checks every annotated argument against its `Mcp-Param-<Name>` header: a value in the
/// body needs its header, a header needs its value, and both must agree. `header` looks a
/// header up by name, case-insensitively.
pub fn check_params<'h>(
    tool_schema: &Value,
    arguments: Option<&Value>,
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<(), ErrorObject> {
    let mismatch = |msg: String| ErrorObject::new(codes::HEADER_MISMATCH, msg);
    for p in param_headers(tool_schema) {
        let header_name = format!("Mcp-Param-{}", p.name);
        let body = lookup(arguments, &p.path);
        let arg = p.path.join(".");
        match (header(&header_name), body) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(mismatch(format!(
                    "{header_name} header is missing but argument `{arg}` is present"
                )));
            }
            (Some(raw), body) => {
                let Some(value) = decode_value(raw) else {
                    return Err(mismatch(format!(
                        "{header_name} header carries a malformed base64 value"
                    )));
                };
                match body {
                    Some(b) if same(&value, b) => {}
                    Some(_) => {
                        return Err(mismatch(format!(
                            "{header_name} header does not match argument `{arg}`"
                        )));
                    }
                    None => {
                        return Err(mismatch(format!(
                            "{header_name} header is present but argument `{arg}` is not"
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The `Mcp-Param-*` headers a request to a 2026-07-28 upstream must carry.
pub fn params_for(tool_schema: &Value, arguments: Option<&Value>) -> Vec<(String, String)> {
    param_headers(tool_schema)
        .into_iter()
        .filter_map(|p| {
            let v = render(lookup(arguments, &p.path)?)?;
            Some((format!("Mcp-Param-{}", p.name), encode_value(&v)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_decode_from_the_base64_sentinel_and_lose_surrounding_whitespace() {
        assert_eq!(decode_value("  echo ").as_deref(), Some("echo"));
        assert_eq!(
            decode_value("=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(),
            Some("Hello, 世界")
        );
        assert_eq!(
            decode_value("=?base64?SGVsbG8?="),
            None,
            "missing padding is refused"
        );
        assert_eq!(
            decode_value("=?base64?SGVs!!!bG8=?="),
            None,
            "non-alphabet characters are refused"
        );
        assert_eq!(
            decode_value("=?base64?SGVsbG8=").as_deref(),
            Some("=?base64?SGVsbG8="),
            "no suffix: literal"
        );
        for v in ["echo", "Hello, 世界", " padded ", "=?base64?literal?="] {
            assert_eq!(decode_value(&encode_value(v)).as_deref(), Some(v));
        }
    }

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "shard": {"type": "integer", "x-mcp-header": "Shard"},
            "ratio": {"type": "number", "x-mcp-header": "Ratio"},
            "list": {"type": "array", "items": {"type": "string", "x-mcp-header": "Item"}},
            "nested": {"type": "object", "properties": {"flag": {"type": "boolean", "x-mcp-header": "Flag"}}}
        }})
    }

    #[test]
    fn only_scalar_properties_on_a_plain_properties_chain_are_annotations() {
        let names: Vec<String> = param_headers(&schema())
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["Region", "Shard", "Flag"]);
    }

    #[test]
    fn a_param_header_must_agree_with_its_argument() {
        let args = json!({"region": "eu", "shard": 42, "nested": {"flag": true}});
        let ok = |h: &str| match h {
            "Mcp-Param-Region" => Some("eu"),
            "Mcp-Param-Shard" => Some("42.0"),
            "Mcp-Param-Flag" => Some("true"),
            _ => None,
        };
        assert!(check_params(&schema(), Some(&args), ok).is_ok());
        let wrong = |h: &str| {
            if h == "Mcp-Param-Region" {
                Some("us")
            } else {
                ok(h)
            }
        };
        assert_eq!(
            check_params(&schema(), Some(&args), wrong)
                .unwrap_err()
                .code,
            codes::HEADER_MISMATCH
        );
        let missing = |h: &str| if h == "Mcp-Param-Shard" { None } else { ok(h) };
        assert!(check_params(&schema(), Some(&args), missing).is_err());
        let extra = |h: &str| {
            if h == "Mcp-Param-Region" {
                Some("eu")
            } else {
                None
            }
        };
        assert!(check_params(&schema(), Some(&json!({})), extra).is_err());
    }

    #[test]
    fn upstream_param_headers_are_rendered_and_encoded() {
        let args = json!({"region": "Zürich", "shard": 7});
        let got = params_for(&schema(), Some(&args));
        assert_eq!(
            got,
            [
                ("Mcp-Param-Region".to_owned(), encode_value("Zürich")),
                ("Mcp-Param-Shard".to_owned(), "7".to_owned())
            ]
        );
    }
}
