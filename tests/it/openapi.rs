//! `docs/openapi.json` describes exactly the API the analyst listener serves.

use std::collections::BTreeSet;

use reqwest::StatusCode;

use crate::support::{Backend, Deployment, client};

/// The source file that holds the analyst listener's API routes (`pub fn router`, and
/// `pub fn uploads` for the routes whose bodies stream), relative to the package.
const ANALYST_ROUTER_SOURCE: &str = "src/web/analyst/api/mod.rs";

fn read_package_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The `(METHOD, path)` pairs routed under /api/ in the analyst API's source.
fn routed() -> BTreeSet<(String, String)> {
    let source = read_package_file(ANALYST_ROUTER_SOURCE);
    let router = &source[source
        .find("pub fn router")
        .unwrap_or_else(|| panic!("no `pub fn router` in {ANALYST_ROUTER_SOURCE}"))..];
    let mut routes = BTreeSet::new();
    for chunk in router.split(".route(").skip(1) {
        let path = chunk.split('"').nth(1).unwrap().to_owned();
        if !path.starts_with("/api/") {
            continue;
        }
        // Everything up to the next `.route(`: `get(handler)` and chained `.post(handler)`.
        let handlers: String = chunk.split_whitespace().collect();
        for method in ["get", "post", "put", "patch", "delete"] {
            let first = handlers.contains(&format!(",{method}("));
            let chained = handlers.contains(&format!(").{method}("));
            if first || chained {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

fn documented() -> BTreeSet<(String, String)> {
    let spec: serde_json::Value =
        serde_json::from_str(&read_package_file("docs/openapi.json")).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut routes = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

#[test]
fn the_description_matches_the_routes() {
    let routed = routed();
    assert!(routed.len() >= 8, "{routed:?}");
    assert_eq!(documented(), routed);
}

/// And the server really answers each documented operation (never 404/405 for the route).
#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_is_served() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let server = deployment.start();
    for (method, path) in documented() {
        let url = format!(
            "{}{}",
            server.analyst,
            path.replace("{id}", &"0".repeat(32))
        );
        let response = client()
            .request(method.parse().unwrap(), &url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST,
            "{method} {path}: {status}"
        );
    }
}
