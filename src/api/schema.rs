//! The schemas of `docs/openapi.json`, generated from the API types, and the patterns in them
//! that say in JSON Schema what the server's own checks accept.
//!
//! The test below fails when `components.schemas` in the file differs from what the types
//! generate; `UPDATE_OPENAPI=1 cargo test --lib api::schema` rewrites it. Paths and parameters
//! are written by hand; the same test checks that each operation's bodies name the type the
//! route uses ([`ROUTES`]) and that every `$ref` resolves.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value};

use super::*;

/// What `char::is_whitespace` calls white space (Unicode `White_Space`): Rust's `trim` removes
/// these, and JSON Schema's `\s` is not the same set.
const WHITESPACE: &[(char, char)] = &[
    ('\t', '\r'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// What `char::is_control` calls a control character (general category Cc).
const CONTROL: &[(char, char)] = &[('\0', '\u{1f}'), ('\u{7f}', '\u{9f}')];

/// The inside of a character class holding `ranges`, in `\uXXXX` escapes (every one of these
/// characters is in the Basic Multilingual Plane).
fn class(ranges: &[(char, char)]) -> String {
    let escape = |c: char| format!("\\u{:04x}", u32::from(c));
    ranges
        .iter()
        .map(|&(first, last)| {
            if first == last {
                escape(first)
            } else {
                format!("{}-{}", escape(first), escape(last))
            }
        })
        .collect()
}

/// A note or a reply: something besides white space (the server trims before it checks).
pub(super) fn writing_pattern() -> String {
    format!("[^{}]", class(WHITESPACE))
}

/// A tip's label: 1 to 64 characters, none of them a control character (not trimmed).
pub(super) fn label_pattern() -> String {
    format!("^[^{}]{{1,64}}$", class(CONTROL))
}

/// A reviewer key's label or owner once trimmed: 1 to 200 characters without control
/// characters, starting and ending with something besides white space.
fn trimmed_name() -> String {
    let (space, control) = (class(WHITESPACE), class(CONTROL));
    let edge = format!("[^{space}{control}]");
    format!("{edge}|{edge}[^{control}]{{0,198}}{edge}")
}

/// A reviewer key's label: a name once trimmed (white space around it is allowed).
pub(super) fn key_label_pattern() -> String {
    let space = class(WHITESPACE);
    format!("^[{space}]*(?:{})[{space}]*$", trimmed_name())
}

/// A reviewer key's owner: like a label, or only white space (which counts as no owner).
pub(super) fn key_owner_pattern() -> String {
    let space = class(WHITESPACE);
    format!("^[{space}]*(?:{})?[{space}]*$", trimmed_name())
}

/// Standard base64 with padding, as the server decodes it: the unused bits of the last
/// character must be zero.
pub(super) fn header_pattern() -> String {
    let b = "[A-Za-z0-9+/]";
    format!("^(?:{b}{{4}})*(?:{b}[AQgw]==|{b}{{2}}[AEIMQUYcgkosw048]=)?$")
}

/// `labels` of a triage: absent, null, or at most 20 labels.
pub(super) fn labels_schema(generator: &mut SchemaGenerator) -> Schema {
    let label = generator.subschema_for::<Label>();
    json_schema!({
        "type": ["array", "null"],
        "maxItems": 20,
        "items": label,
    })
}

/// A tip's label, as triage sets it.
struct Label;

impl JsonSchema for Label {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Label".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "1 to 64 characters, none of them a control character.",
            "minLength": 1,
            "maxLength": 64,
            "pattern": label_pattern(),
        })
    }
}

/// Which types a route of `/api/v1` reads and answers with (every error answer is an
/// [`Error`]; sealed items travel as raw age files).
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// The request body's type.
    pub request: Option<&'static str>,
    /// The success status and its body's type.
    pub answer: (&'static str, &'static str),
}

const fn route(
    method: &'static str,
    path: &'static str,
    request: Option<&'static str>,
    answer: (&'static str, &'static str),
) -> Route {
    Route {
        method,
        path,
        request,
        answer,
    }
}

/// The routes with a JSON body, in `docs/openapi.json` and `src/web`.
pub const ROUTES: &[Route] = &[
    route(
        "post",
        "/api/v1/session",
        Some("SignIn"),
        ("200", "NewSession"),
    ),
    route("get", "/api/v1/session", None, ("200", "Session")),
    route("get", "/api/v1/analysts", None, ("200", "AnalystList")),
    route("get", "/api/v1/tips", None, ("200", "TipPage")),
    route(
        "post",
        "/api/v1/tips/bulk",
        Some("BulkChange"),
        ("200", "BulkChanged"),
    ),
    route("get", "/api/v1/tips/{id}", None, ("200", "Tip")),
    route("patch", "/api/v1/tips/{id}", Some("Triage"), ("200", "Tip")),
    route(
        "post",
        "/api/v1/tips/{id}/notes",
        Some("Writing"),
        ("201", "WritingCreated"),
    ),
    route(
        "post",
        "/api/v1/tips/{id}/replies",
        Some("Writing"),
        ("201", "WritingCreated"),
    ),
    route(
        "post",
        "/api/v1/tips/{id}/notes/sealed",
        Some("SealedNote"),
        ("201", "WritingCreated"),
    ),
    route(
        "post",
        "/api/v1/tips/{id}/replies/sealed",
        Some("SealedReply"),
        ("201", "WritingCreated"),
    ),
    route(
        "put",
        "/api/v1/items/{id}/header",
        Some("HeaderReplacement"),
        ("200", "Rekeyed"),
    ),
    route("put", "/api/v1/items/{id}/sealed", None, ("200", "Rekeyed")),
    route("get", "/api/v1/audit", None, ("200", "AuditTrail")),
    route("get", "/api/v1/keys", None, ("200", "KeyList")),
    route("post", "/api/v1/keys", Some("NewKey"), ("201", "KeyChange")),
    route("get", "/api/v1/keys/status", None, ("200", "KeyringStatus")),
    route("get", "/api/v1/keys/current", None, ("200", "CurrentKeys")),
    route(
        "post",
        "/api/v1/keys/{id}/retire",
        None,
        ("200", "KeyChange"),
    ),
    route(
        "post",
        "/api/v1/keys/{id}/revoke",
        None,
        ("200", "KeyChange"),
    ),
    route("get", "/api/v1/rekey", None, ("200", "RekeyPage")),
];

/// `components.schemas` of `docs/openapi.json`: every body `/api/v1` takes (as the server
/// reads it) and answers (as the server writes it), and the types they use, by name.
pub fn components() -> Map<String, Value> {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let mut requests = settings.clone().for_deserialize().into_generator();
    requests.subschema_for::<SignIn>();
    requests.subschema_for::<Triage>();
    requests.subschema_for::<BulkChange>();
    requests.subschema_for::<Writing>();
    requests.subschema_for::<SealedNote>();
    requests.subschema_for::<SealedReply>();
    requests.subschema_for::<NewKey>();
    requests.subschema_for::<HeaderReplacement>();
    let mut answers = settings.for_serialize().into_generator();
    answers.subschema_for::<Error>();
    answers.subschema_for::<Health>();
    answers.subschema_for::<NewSession>();
    answers.subschema_for::<Session>();
    answers.subschema_for::<AnalystList>();
    answers.subschema_for::<TipPage>();
    answers.subschema_for::<Tip>();
    answers.subschema_for::<BulkChanged>();
    answers.subschema_for::<WritingCreated>();
    answers.subschema_for::<KeyList>();
    answers.subschema_for::<KeyChange>();
    answers.subschema_for::<KeyringStatus>();
    answers.subschema_for::<CurrentKeys>();
    answers.subschema_for::<RekeyPage>();
    answers.subschema_for::<Rekeyed>();
    answers.subschema_for::<AuditTrail>();
    let mut schemas = requests.take_definitions(true);
    for (name, schema) in answers.take_definitions(true) {
        // A type in both directions (an enum, say) must read and write alike, or the two
        // would need two names.
        if let Some(read) = schemas.get(&name) {
            assert_eq!(read, &schema, "{name} is read and written differently");
        }
        schemas.insert(name, schema);
    }
    schemas
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAPI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

    #[test]
    fn openapi_json_holds_the_schemas_of_the_api_types() {
        let text = std::fs::read_to_string(OPENAPI).unwrap();
        let mut spec: Value = serde_json::from_str(&text).unwrap();
        let generated = Value::Object(components());
        if spec["components"]["schemas"] == generated {
            return;
        }
        if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
            spec["components"]["schemas"] = generated;
            let text = serde_json::to_string_pretty(&spec).unwrap() + "\n";
            std::fs::write(OPENAPI, text).unwrap();
            return;
        }
        panic!(
            "docs/openapi.json's components.schemas differ from the types in src/api: \
             run `UPDATE_OPENAPI=1 cargo test --lib api::schema` and review the diff"
        );
    }

    fn body_ref(content: &Value) -> Option<&str> {
        let schema = &content["application/json"]["schema"];
        schema["$ref"]
            .as_str()
            .or_else(|| schema["allOf"][0]["$ref"].as_str())
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
    }

    #[test]
    fn each_operation_names_the_types_its_route_uses() {
        let spec: Value = serde_json::from_str(&std::fs::read_to_string(OPENAPI).unwrap()).unwrap();
        for &Route {
            method,
            path,
            request,
            answer,
        } in ROUTES
        {
            let operation = &spec["paths"][path][method];
            assert!(operation.is_object(), "{method} {path} is not documented");
            assert_eq!(
                body_ref(&operation["requestBody"]["content"]),
                request,
                "{method} {path}: request body"
            );
            let (status, answer) = answer;
            let content = &operation["responses"][status]["content"];
            assert_eq!(body_ref(content), Some(answer), "{method} {path}: {status}");
            // Every other answer with a JSON body is an error.
            for (other, response) in operation["responses"].as_object().unwrap() {
                if other == status {
                    continue;
                }
                let response = match response["$ref"].as_str() {
                    Some(name) => {
                        let name = name.strip_prefix("#/components/responses/").unwrap();
                        &spec["components"]["responses"][name]
                    }
                    None => response,
                };
                if let Some(content) = response["content"].as_object() {
                    assert_eq!(
                        body_ref(&Value::Object(content.clone())),
                        Some("Error"),
                        "{method} {path}: {other}"
                    );
                }
            }
        }
        let documented: usize = spec["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "parameters")
                    .count()
            })
            .sum();
        // `DELETE /api/v1/session` and `GET /api/v1/items/{id}/sealed` have no JSON body.
        assert_eq!(documented, ROUTES.len() + 2);
    }

    #[test]
    fn every_reference_resolves() {
        fn walk<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        refs.push(r);
                    }
                    map.values().for_each(|v| walk(v, refs));
                }
                Value::Array(values) => values.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        let spec: Value = serde_json::from_str(&std::fs::read_to_string(OPENAPI).unwrap()).unwrap();
        let mut refs = Vec::new();
        walk(&spec, &mut refs);
        assert!(refs.len() > 30);
        for reference in refs {
            let pointer = reference.strip_prefix('#').unwrap();
            assert!(
                spec.pointer(pointer).is_some(),
                "{reference} resolves to nothing"
            );
        }
    }

    #[test]
    fn the_character_classes_are_rusts() {
        let within =
            |ranges: &[(char, char)], c: char| ranges.iter().any(|&(a, b)| (a..=b).contains(&c));
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            assert_eq!(within(WHITESPACE, c), c.is_whitespace(), "{c:?}");
            assert_eq!(within(CONTROL, c), c.is_control(), "{c:?}");
        }
    }

    fn matches(pattern: &str, text: &str) -> bool {
        regex_automata::meta::Regex::new(pattern)
            .unwrap()
            .is_match(text)
    }

    /// The server's checks, as src/web states them (`seal_writing`, `valid_label`,
    /// `add_key`'s `valid_name` after `trim`).
    fn server_takes_writing(text: &str) -> bool {
        !text.trim().is_empty()
    }
    fn server_takes_label(label: &str) -> bool {
        (1..=64).contains(&label.chars().count()) && !label.chars().any(char::is_control)
    }
    fn server_takes_name(name: &str) -> bool {
        let name = name.trim();
        (1..=200).contains(&name.chars().count()) && !name.chars().any(char::is_control)
    }

    fn samples() -> Vec<String> {
        let mut samples: Vec<String> = [
            "",
            " ",
            "a",
            " a ",
            "\ta\n",
            "a b",
            "a\tb",
            "a\u{85}b",
            "\u{85}a\u{85}",
            "\u{3000}",
            "a\u{3000}b",
            "\u{feff}",
            "\u{200b}",
            "\u{7f}",
            "a\u{9f}",
            "é",
            "🙂",
            "\u{202e}x",
            "\r\n",
            "\u{2028}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for n in [63, 64, 65, 199, 200, 201] {
            samples.push("x".repeat(n));
            samples.push(format!("  {}  ", "é".repeat(n)));
            samples.push(format!("🙂{}🙂", " ".repeat(n.saturating_sub(2))));
        }
        samples
    }

    #[test]
    fn the_patterns_take_what_the_server_takes() {
        for sample in samples() {
            assert_eq!(
                matches(&writing_pattern(), &sample),
                server_takes_writing(&sample),
                "text {sample:?}"
            );
            assert_eq!(
                matches(&label_pattern(), &sample),
                server_takes_label(&sample),
                "label {sample:?}"
            );
            assert_eq!(
                matches(&key_label_pattern(), &sample),
                server_takes_name(&sample),
                "key label {sample:?}"
            );
            assert_eq!(
                matches(&key_owner_pattern(), &sample),
                sample.trim().is_empty() || server_takes_name(&sample),
                "key owner {sample:?}"
            );
        }
    }

    #[test]
    fn the_header_pattern_is_what_base64_decodes() {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut samples = vec![String::new(), "=".into(), "A===".into(), "AB".into()];
        for length in 0..7 {
            let bytes: Vec<u8> = (0..length).map(|i| 0xa5 ^ i as u8).collect();
            let encoded = engine.encode(&bytes);
            samples.push(encoded.clone());
            samples.push(encoded.trim_end_matches('=').to_owned());
            // The same length with non-zero unused bits in the last character.
            if encoded.ends_with('=') {
                let at = encoded.trim_end_matches('=').len() - 1;
                let mut bent = encoded.clone().into_bytes();
                bent[at] = if bent[at] == b'/' { b'+' } else { b'/' };
                samples.push(String::from_utf8(bent).unwrap());
            }
        }
        for sample in samples {
            assert_eq!(
                matches(&header_pattern(), &sample),
                engine.decode(sample.as_bytes()).is_ok(),
                "{sample:?}"
            );
        }
    }
}
