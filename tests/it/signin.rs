//! Analysts sign in to the JSON API with a password and a TOTP code, over a real socket: one
//! answer for every refusal, a code accepted once, a back-off per account that parallel guesses
//! cannot outrun, sign-out, and an audit trail without secrets.

use reqwest::{Method, StatusCode};

use crate::support::analyst::{Analyst, add_analyst, api, api_call, code, sign_in};
use crate::support::{Backend, Deployment, Server, client, now, on_both_backends};

/// A deployment with an analyst account for each name (`carol` is disabled), served.
fn with_analysts(backend: Backend, names: &[&str]) -> (Deployment, Vec<Analyst>, Server) {
    let deployment = Deployment::new(backend, "");
    let analysts = names
        .iter()
        .map(|name| add_analyst(&deployment, name, "analyst"))
        .collect();
    if names.contains(&"carol") {
        deployment.tipbox_ok(&["analyst", "disable", "carol"]);
    }
    let server = deployment.start();
    (deployment, analysts, server)
}

/// `GET /api/v1/session` with `token`: the status.
async fn whoami(server: &Server, token: &str) -> StatusCode {
    api_call(server, token, Method::GET, "/api/v1/session", None)
        .await
        .0
}

/// A good sign-in gives a 256-bit token that works, and says until when.
async fn a_good_sign_in_gives_a_working_token(backend: Backend) {
    let (_deployment, analysts, server) = with_analysts(backend, &["alice"]);
    let alice = &analysts[0];
    let (status, body) = sign_in(&server, "alice", &alice.password, &code(alice, 0)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap();
    assert!(token.len() >= 43, "256-bit token");
    assert!(body["expires_at"].as_i64().unwrap() > now());
    assert_eq!(whoami(&server, token).await, StatusCode::OK);
}

/// A replayed code, a wrong password, an unknown user (even with another account's password
/// and code) and a disabled account: the same refusal, word for word.
async fn every_refusal_gets_the_same_answer(backend: Backend) {
    let (_deployment, analysts, server) = with_analysts(backend, &["alice", "carol"]);
    let (alice, carol) = (&analysts[0], &analysts[1]);
    let first_code = code(alice, 0);
    let (status, _) = sign_in(&server, "alice", &alice.password, &first_code).await;
    assert_eq!(status, StatusCode::OK);
    let mut answers = Vec::new();
    for (what, username, password, totp) in [
        (
            "a replayed code",
            "alice",
            alice.password.as_str(),
            first_code.clone(),
        ),
        (
            "a wrong password",
            "alice",
            "not the password",
            code(alice, 1),
        ),
        ("an unknown user", "nobody", "whatever", "123456".to_owned()),
        (
            "an unknown user with alice's credentials",
            "nobody",
            alice.password.as_str(),
            code(alice, 1),
        ),
        (
            "a disabled account",
            "carol",
            carol.password.as_str(),
            code(carol, 0),
        ),
    ] {
        let (status, body) = sign_in(&server, username, password, &totp).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        answers.push((what, body));
    }
    for (what, body) in &answers {
        assert_eq!(*body, answers[0].1, "{what} and {}", answers[0].0);
    }
}

/// (A parsing and routing matter: on SQLite only.)
#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_body_is_a_bad_request() {
    let (_deployment, _, server) = with_analysts(Backend::Sqlite, &[]);
    let garbage = client()
        .post(format!("{}/api/v1/session", server.analyst))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
}

/// Twelve guesses at once: every guess is counted before it is checked, so after three free
/// tries each back-off turns the guesses arriving in it away unchecked.
async fn parallel_guesses_are_counted_before_they_are_checked(backend: Backend) {
    let (deployment, _, server) = with_analysts(backend, &["bob"]);
    let guesses = (0..12).map(|_| sign_in(&server, "bob", "guess", "000000"));
    for (status, _) in futures_util::future::join_all(guesses).await {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let store = deployment.store().await;
    let bob = store.analyst("bob").await.unwrap().unwrap();
    store.close().await;
    assert!(
        (3..=6).contains(&bob.failed_attempts),
        "{} of twelve parallel guesses were checked",
        bob.failed_attempts
    );
}

/// A deployment with alice and bob, bob in back-off (as after a long run of failures).
async fn bob_in_back_off(backend: Backend) -> (Deployment, Vec<Analyst>, Server) {
    let (deployment, analysts, server) = with_analysts(backend, &["alice", "bob"]);
    deployment
        .execute_sql(
            "UPDATE analysts SET failed_attempts = 9, locked_until = 4102444800 \
             WHERE username = 'bob'",
        )
        .await;
    (deployment, analysts, server)
}

/// In back-off even the right credentials are refused, and guesses made meanwhile do not
/// extend it.
async fn a_back_off_refuses_the_right_credentials_and_is_not_extended(backend: Backend) {
    let (deployment, analysts, server) = bob_in_back_off(backend).await;
    let bob = &analysts[1];
    let (status, _) = sign_in(&server, "bob", &bob.password, &code(bob, 0)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "bob is in back-off");
    let store = deployment.store().await;
    let locked_until = store.analyst("bob").await.unwrap().unwrap().locked_until;
    let (status, _) = sign_in(&server, "bob", "guess", "000000").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        store.analyst("bob").await.unwrap().unwrap().locked_until,
        locked_until
    );
    store.close().await;
}

async fn an_admin_ends_a_back_off(backend: Backend) {
    let (deployment, analysts, server) = bob_in_back_off(backend).await;
    let bob = &analysts[1];
    deployment.tipbox_ok(&["analyst", "unlock", "bob"]);
    let (status, body) = sign_in(&server, "bob", &bob.password, &code(bob, 1)).await;
    assert_eq!(status, StatusCode::OK, "unlocked: {body}");
}

/// Back-off is per account: alice is not locked out by bob's attackers, who go on guessing
/// while bob is in back-off.
async fn one_account_s_back_off_leaves_the_others_alone(backend: Backend) {
    let (_deployment, analysts, server) = bob_in_back_off(backend).await;
    let alice = &analysts[0];
    let guesses = (0..3).map(|_| sign_in(&server, "bob", "guess", "000000"));
    futures_util::future::join_all(guesses).await;
    let (status, body) = sign_in(&server, "alice", &alice.password, &code(alice, 0)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// `DELETE /api/v1/session` with `token`, which must answer 204.
async fn sign_out(server: &Server, token: &str) {
    let (status, _) = api_call(server, token, Method::DELETE, "/api/v1/session", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

async fn signing_out_ends_the_session_at_once(backend: Backend) {
    let (_deployment, analysts, server) = with_analysts(backend, &["alice"]);
    let token = crate::support::analyst::token(&server, &analysts[0], 0).await;
    sign_out(&server, &token).await;
    assert_eq!(whoami(&server, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        whoami(&server, "made-up-token").await,
        StatusCode::UNAUTHORIZED
    );
}

/// (A routing matter: on SQLite only.)
#[tokio::test(flavor = "multi_thread")]
async fn the_public_listener_knows_nothing_of_sign_in() {
    let (_deployment, _, server) = with_analysts(Backend::Sqlite, &[]);
    let url = format!("{}/api/v1/session", server.public);
    let (status, _) = api(Method::POST, url, None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Every attempt is in an audit trail that verifies; no password, code or token is in it or in
/// the log.
async fn every_attempt_is_audited_without_secrets(backend: Backend) {
    let (deployment, analysts, server) = with_analysts(backend, &["alice", "carol"]);
    let (alice, carol) = (&analysts[0], &analysts[1]);
    let first_code = code(alice, 0);
    let (status, body) = sign_in(&server, "alice", &alice.password, &first_code).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["token"].as_str().unwrap().to_owned();
    for (username, password, totp) in [
        ("alice", alice.password.as_str(), first_code.clone()),
        ("alice", "not the password", code(alice, 1)),
        ("nobody", "whatever", "123456".to_owned()),
        ("carol", carol.password.as_str(), code(carol, 0)),
    ] {
        let (status, _) = sign_in(&server, username, password, &totp).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = sign_in(&server, "alice", &alice.password, &code(alice, 1)).await;
    assert_eq!(status, StatusCode::OK);
    sign_out(&server, &token).await;

    let entries = deployment.audit_entries().await;
    let count = |action: &str| entries.iter().filter(|e| e.action == action).count();
    assert_eq!(count("signin.success"), 2);
    assert_eq!(count("signin.failure"), 4);
    assert_eq!(count("signout"), 1);
    for e in &entries {
        assert!(!e.detail.contains(&alice.password) && !e.detail.contains(&first_code));
    }
    assert!(
        deployment
            .tipbox_ok(&["audit", "verify"])
            .contains("intact")
    );
    let log = deployment.log();
    assert!(!log.contains(&alice.password) && !log.contains(&token));
}

on_both_backends!(
    a_good_sign_in_gives_a_working_token,
    every_refusal_gets_the_same_answer,
    parallel_guesses_are_counted_before_they_are_checked,
    a_back_off_refuses_the_right_credentials_and_is_not_extended,
    an_admin_ends_a_back_off,
    one_account_s_back_off_leaves_the_others_alone,
    signing_out_ends_the_session_at_once,
    every_attempt_is_audited_without_secrets,
);
