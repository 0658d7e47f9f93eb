//! The authorization matrix: every analyst route, refused without a session, with an expired
//! session, without or with a wrong CSRF token, and (for admin routes and actions) for a mere
//! analyst — and not served at all on the public listener — and nothing any of them sent
//! changed a thing in the database.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};

use crate::support::analyst::{add_analyst, api_call, api_get, token};
use crate::support::web::{desk_sign_in, form, get, hidden_csrf};
use crate::support::{Backend, Deployment, client, submit_message};

/// `(method, path, kind)` for the tip `tip` and its item `item`: kind is "api", "api-admin",
/// "page" (GET, redirects to sign-in) or "form" (POST with a CSRF token).
fn routes(tip: &str, item: &str) -> Vec<(&'static str, String, &'static str)> {
    // Every route names a tip or an item that exists: a guard that let a request through
    // would change or show something real.
    vec![
        ("GET", "/api/v1/session".into(), "api"),
        ("DELETE", "/api/v1/session".into(), "api"),
        ("GET", "/api/v1/tips".into(), "api"),
        ("POST", "/api/v1/tips/bulk".into(), "api"),
        ("GET", format!("/api/v1/tips/{tip}"), "api"),
        ("PATCH", format!("/api/v1/tips/{tip}"), "api"),
        ("POST", format!("/api/v1/tips/{tip}/notes"), "api"),
        ("POST", format!("/api/v1/tips/{tip}/replies"), "api"),
        ("GET", format!("/api/v1/items/{item}/sealed"), "api"),
        ("PUT", format!("/api/v1/items/{item}/sealed"), "api"),
        ("PUT", format!("/api/v1/items/{item}/header"), "api"),
        ("GET", "/api/v1/rekey".into(), "api"),
        ("GET", "/api/v1/audit".into(), "api-admin"),
        ("GET", "/api/v1/keys".into(), "api-admin"),
        ("POST", "/api/v1/keys".into(), "api-admin"),
        ("GET", "/api/v1/keys/status".into(), "api-admin"),
        // Key 1 is alice's, the only active key: an analyst's attempt must not even reach the
        // policy that would refuse it.
        ("POST", "/api/v1/keys/1/retire".into(), "api-admin"),
        ("POST", "/api/v1/keys/1/revoke".into(), "api-admin"),
        ("GET", "/".into(), "page"),
        ("GET", "/queue".into(), "page"),
        ("GET", format!("/tips/{tip}"), "page"),
        ("GET", format!("/tips/{tip}/archive"), "page"),
        ("GET", format!("/items/{item}/sealed"), "page"),
        ("GET", "/account/password".into(), "page"),
        ("POST", "/logout".into(), "form"),
        ("POST", "/account/password".into(), "form"),
        ("POST", format!("/tips/{tip}/triage"), "form"),
        ("POST", "/tips/bulk".into(), "form"),
        ("POST", "/tips/bulk/confirm".into(), "form"),
        ("POST", format!("/tips/{tip}/notes"), "form"),
        ("POST", format!("/tips/{tip}/replies"), "form"),
    ]
}

/// A request as every route of the matrix gets it: a form or JSON body that would change the
/// tip `tip` (triage it, write on it, delete it in bulk) if a guard let it through.
async fn request(
    base: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    cookie: Option<&str>,
    csrf: Option<&str>,
    tip: &str,
) -> reqwest::Response {
    let mut request = client().request(method.parse().unwrap(), format!("{base}{path}"));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    if method == "POST" && !path.starts_with("/api/") {
        let mut body = format!("status=spam&labels=x&assignee=&text=x&action=delete&tip={tip}");
        if let Some(csrf) = csrf {
            body.push_str(&format!("&csrf={csrf}"));
        }
        request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
    } else if method != "GET" {
        request = request
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"text":"x","status":"spam","action":"delete","ids":["{tip}"]}}"#
            ));
    }
    request.send().await.unwrap()
}

fn refused_page(response: &reqwest::Response) -> bool {
    response.status() == StatusCode::SEE_OTHER && response.headers()[LOCATION] == "/login"
}

#[tokio::test(flavor = "multi_thread")]
async fn every_analyst_route_is_guarded() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let base = server.analyst.clone();
    submit_message(&server, "a tip behind the guards").await;

    // An API token and a browser session for the analyst (not an admin).
    let token = token(&server, &ana, 0).await;
    let (session_cookie, _) = desk_sign_in(&server, &ana, 1).await;
    let tips = api_get(&server, &token, "/api/v1/tips").await;
    let tip = tips["tips"][0]["id"].as_str().unwrap().to_owned();
    let item = tips["tips"][0]["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = async |base: &str,
                      method: &str,
                      path: &str,
                      bearer: Option<&str>,
                      cookie: Option<&str>,
                      csrf: Option<&str>| {
        request(base, method, path, bearer, cookie, csrf, &tip).await
    };
    let before = deployment.stored().await;

    for (method, path, kind) in routes(&tip, &item) {
        let what = format!("{method} {path}");
        match kind {
            "api" | "api-admin" => {
                for bearer in [None, Some("forged-token")] {
                    let r = call(&base, method, &path, bearer, None, None).await;
                    assert_eq!(
                        r.status(),
                        StatusCode::UNAUTHORIZED,
                        "{what} with {bearer:?}"
                    );
                }
                // A browser session cookie is not an API credential.
                let r = call(&base, method, &path, None, Some(&session_cookie), None).await;
                assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what} with a cookie");
                if kind == "api-admin" {
                    let r = call(&base, method, &path, Some(&token), None, None).await;
                    assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what} as an analyst");
                }
            }
            "page" => {
                assert!(
                    refused_page(&call(&base, method, &path, None, None, None).await),
                    "{what}"
                );
                assert!(
                    refused_page(&call(&base, method, &path, Some(&token), None, None).await),
                    "{what} with a bearer token"
                );
            }
            "form" => {
                let r = call(&base, method, &path, None, None, Some("anything")).await;
                assert_eq!(
                    r.status(),
                    StatusCode::FORBIDDEN,
                    "{what} without a session"
                );
                let r = call(&base, method, &path, None, Some(&session_cookie), None).await;
                assert_eq!(
                    r.status(),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{what} without a CSRF token"
                );
                let r = call(
                    &base,
                    method,
                    &path,
                    None,
                    Some(&session_cookie),
                    Some("forged"),
                )
                .await;
                assert_eq!(
                    r.status(),
                    StatusCode::FORBIDDEN,
                    "{what} with a wrong CSRF token"
                );
            }
            _ => unreachable!(),
        }
        // The public listener serves none of it (its `/` is the sources' landing page).
        if path != "/" {
            let r = call(
                &server.public,
                method,
                &path,
                Some(&token),
                Some(&session_cookie),
                Some("x"),
            )
            .await;
            assert!(
                r.status() == StatusCode::NOT_FOUND || r.status() == StatusCode::METHOD_NOT_ALLOWED,
                "public {what}: {}",
                r.status()
            );
        }
    }

    // Nothing an analyst or a stranger sent changed anything: not the tip, its items, notes,
    // replies or labels, not the keyring.
    assert_eq!(deployment.stored().await, before);
    let keys: serde_json::Value =
        serde_json::from_str(&deployment.tipbox_ok(&["keys", "list", "--json"])).unwrap();
    assert_eq!(keys[0]["state"], "active", "{keys}");
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");

    // Both credentials still work — then expire them, and everything is refused again.
    assert_eq!(
        call(&base, "GET", "/api/v1/tips", Some(&token), None, None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        call(&base, "GET", "/queue", None, Some(&session_cookie), None)
            .await
            .status(),
        StatusCode::OK
    );
    deployment
        .execute_sql("UPDATE sessions SET last_seen_at = 0")
        .await;
    let before = deployment.stored().await;
    for (method, path, kind) in routes(&tip, &item) {
        let what = format!("{method} {path} after expiry");
        match kind {
            "api" | "api-admin" => {
                assert_eq!(
                    call(&base, method, &path, Some(&token), None, None)
                        .await
                        .status(),
                    StatusCode::UNAUTHORIZED,
                    "{what}"
                );
            }
            "page" => assert!(
                refused_page(&call(&base, method, &path, None, Some(&session_cookie), None).await),
                "{what}"
            ),
            _ => {
                let r = call(&base, method, &path, None, Some(&session_cookie), Some("x")).await;
                assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}");
            }
        }
    }
    assert_eq!(deployment.stored().await, before);
}

/// Deleting in bulk is for admins: an analyst's attempt — through the API, or through either
/// desk form with a live session and its CSRF token — is refused with 403 and changes nothing,
/// and the analyst's queue does not offer it.
#[tokio::test(flavor = "multi_thread")]
async fn bulk_deletion_is_for_admins_only() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    submit_message(&server, "a tip an analyst cannot delete").await;
    let token = token(&server, &ana, 0).await;
    let (cookie, _) = desk_sign_in(&server, &ana, 1).await;
    let tip = deployment.tip_ids().await.remove(0);
    let before = deployment.stored().await;

    let body = serde_json::json!({ "action": "delete", "ids": [tip] });
    let (status, answer) = api_call(
        &server,
        &token,
        reqwest::Method::POST,
        "/api/v1/tips/bulk",
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(answer["error"].is_string(), "{answer}");

    let queue = get(&format!("{}/queue", server.analyst), Some(&cookie)).await;
    let queue = queue.text().await.unwrap();
    assert!(queue.contains("value=\"spam\""), "analysts mark spam");
    assert!(!queue.contains("value=\"delete\""), "{queue}");
    let csrf = hidden_csrf(&queue);
    for (path, selection) in [
        ("/tips/bulk", ("tip", tip.as_str())),
        ("/tips/bulk", ("all_matching", "1")),
        ("/tips/bulk/confirm", ("tip", tip.as_str())),
    ] {
        let fields = [("csrf", csrf.as_str()), ("action", "delete"), selection];
        let r = form(&format!("{}{path}", server.analyst), Some(&cookie), &fields).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} {selection:?}");
    }
    assert_eq!(deployment.stored().await, before);
}
