//! Analysts sign in to the JSON API with a password and a TOTP code, over a real socket.

mod common;

use common::*;
use reqwest::StatusCode;

struct Credentials {
    password: String,
    totp_secret: Vec<u8>,
}

fn add_analyst(deployment: &Deployment, name: &str) -> Credentials {
    let out = deployment.tipbox_ok(&["analyst", "add", name, "--json"]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    Credentials {
        password: json["password"].as_str().unwrap().to_owned(),
        totp_secret: totp_rs::Secret::try_from_base32(json["totp_secret"].as_str().unwrap())
            .unwrap()
            .as_bytes()
            .to_vec(),
    }
}

fn code(c: &Credentials, offset_steps: i64) -> String {
    let now = tipbox::clock::now() + offset_steps * 30;
    tipbox::auth::totp::totp(&c.totp_secret, "x")
        .generate(now as u64)
        .to_string()
}

async fn sign_in(
    server: &Server,
    username: &str,
    password: &str,
    totp: &str,
) -> (StatusCode, serde_json::Value) {
    let response = client()
        .post(format!("{}/api/v1/session", server.analyst))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({ "username": username, "password": password, "totp": totp })
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        serde_json::from_str(&response.text().await.unwrap()).unwrap_or_default(),
    )
}

async fn whoami(server: &Server, token: &str) -> StatusCode {
    client()
        .get(format!("{}/api/v1/session", server.analyst))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn sign_in_story(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    let alice = add_analyst(&deployment, "alice");
    let bob = add_analyst(&deployment, "bob");
    let carol = add_analyst(&deployment, "carol");
    deployment.tipbox_ok(&["analyst", "disable", "carol"]);
    let server = deployment.start();

    // A good sign-in gives a token that works, and says until when.
    let first_code = code(&alice, 0);
    let (status, body) = sign_in(&server, "alice", &alice.password, &first_code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 43, "256-bit token");
    assert!(body["expires_at"].as_i64().unwrap() > tipbox::clock::now());
    assert_eq!(whoami(&server, &token).await, StatusCode::OK);

    // The same code a second time is refused, even with the right password.
    let (status, replay) = sign_in(&server, "alice", &alice.password, &first_code).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Wrong password, unknown user, disabled account, malformed body: the same answer.
    let (status, wrong) = sign_in(&server, "alice", "not the password", &code(&alice, 1)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, unknown) = sign_in(&server, "nobody", "whatever", "123456").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, disabled) = sign_in(&server, "carol", &carol.password, &code(&carol, 0)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        replay == wrong && wrong == unknown && unknown == disabled,
        "{replay} {wrong} {unknown} {disabled}"
    );
    let garbage = client()
        .post(format!("{}/api/v1/session", server.analyst))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);

    // Back-off is per account: bob's attackers run guesses in parallel, yet every guess is
    // counted before it is checked; once bob is in back-off even the right credentials are
    // refused; alice is not affected.
    let store = deployment.store().await;
    let guesses = (0..12).map(|_| sign_in(&server, "bob", "guess", "000000"));
    for (status, _) in futures_util::future::join_all(guesses).await {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Three free tries; after that each back-off turns the guesses arriving in it away
    // unchecked, so most of the twelve were never checked at all.
    let bob_row = store.analyst("bob").await.unwrap().unwrap();
    assert!(
        (3..=6).contains(&bob_row.failed_attempts),
        "{} of twelve parallel guesses were checked",
        bob_row.failed_attempts
    );
    // In back-off (as after a longer run of failures), the right credentials are refused too.
    deployment
        .execute_sql("UPDATE analysts SET failed_attempts = 9, locked_until = 4102444800 WHERE username = 'bob'")
        .await;
    let (status, _) = sign_in(&server, "bob", &bob.password, &code(&bob, 0)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "bob is in back-off");
    // Guesses made during back-off do not extend it, and an admin can end it.
    let locked_until = store.analyst("bob").await.unwrap().unwrap().locked_until;
    let (status, _) = sign_in(&server, "bob", "guess", "000000").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        store.analyst("bob").await.unwrap().unwrap().locked_until,
        locked_until
    );
    deployment.tipbox_ok(&["analyst", "unlock", "bob"]);
    let (status, body) = sign_in(&server, "bob", &bob.password, &code(&bob, 1)).await;
    assert_eq!(status, StatusCode::OK, "unlocked: {body}");
    store.close().await;
    let (status, body) = sign_in(&server, "alice", &alice.password, &code(&alice, 1)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "alice is not locked out by bob's attackers: {body}"
    );

    // Signing out ends the session at once.
    let signout = client()
        .delete(format!("{}/api/v1/session", server.analyst))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(signout.status(), StatusCode::NO_CONTENT);
    assert_eq!(whoami(&server, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        whoami(&server, "made-up-token").await,
        StatusCode::UNAUTHORIZED
    );

    // The public listener knows nothing of any of this.
    let public = client()
        .post(format!("{}/api/v1/session", server.public))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);

    // Every attempt is in the audit trail, which verifies; no password or code is in it.
    let store = deployment.store().await;
    let entries = store.audit_entries().await.unwrap();
    assert!(
        entries
            .iter()
            .filter(|e| e.action == "signin.success")
            .count()
            == 3
    );
    assert!(
        entries
            .iter()
            .filter(|e| e.action == "signin.failure")
            .count()
            >= 9
    );
    assert!(entries.iter().any(|e| e.action == "signout"));
    for e in &entries {
        assert!(!e.detail.contains(&alice.password) && !e.detail.contains(&first_code));
    }
    store.close().await;
    assert!(
        deployment
            .tipbox_ok(&["audit", "verify"])
            .contains("intact")
    );
    let log = deployment.log();
    assert!(!log.contains(&alice.password) && !log.contains(&token));
}
on_both_backends!(api_sign_in, sign_in_story);
