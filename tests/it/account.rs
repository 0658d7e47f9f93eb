//! An analyst's own account on the desk: changing one's password with the current one and a
//! TOTP code — the old password refused afterwards, the other sessions ended — and every wrong
//! way of asking refused, counted against the sign-in back-off where a sign-in would be.

use reqwest::StatusCode;
use reqwest::header::LOCATION;

use crate::support::analyst::{Analyst, add_analyst, api_call, code, sign_in, token};
use crate::support::web::{desk_sign_in, form, get, hidden_csrf};
use crate::support::{Backend, Deployment, Server, on_both_backends};

const NEW_PASSWORD: &str = "correct horse battery staple 42";

/// ana, signed in at the desk (with the code one step back, leaving the next two for the
/// change and a sign-in after it), on the password page.
struct AtThePasswordPage {
    deployment: Deployment,
    server: Server,
    ana: Analyst,
    cookie: String,
    csrf: String,
}

async fn at_the_password_page(backend: Backend) -> AtThePasswordPage {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let (cookie, _) = desk_sign_in(&server, &ana, -1).await;
    let queue = get(&format!("{}/queue", server.analyst), Some(&cookie)).await;
    let queue = queue.text().await.unwrap();
    assert!(
        queue.contains("href=\"/account/password\""),
        "the header links the page"
    );
    let page = get(
        &format!("{}/account/password", server.analyst),
        Some(&cookie),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = hidden_csrf(&page.text().await.unwrap());
    AtThePasswordPage {
        deployment,
        server,
        ana,
        cookie,
        csrf,
    }
}

impl AtThePasswordPage {
    /// Posts the form with `current`, the new password twice (`new`, `again`) and the code
    /// `offset` steps from now.
    async fn change(
        &self,
        current: &str,
        new: &str,
        again: &str,
        offset: i64,
    ) -> reqwest::Response {
        form(
            &format!("{}/account/password", self.server.analyst),
            Some(&self.cookie),
            &[
                ("csrf", &self.csrf),
                ("current_password", current),
                ("new_password", new),
                ("new_password_again", again),
                ("totp", &code(&self.ana, offset)),
            ],
        )
        .await
    }

    async fn stored_hash(&self) -> String {
        self.record().await.password_hash
    }

    async fn record(&self) -> tipbox::store::AnalystRecord {
        let store = self.deployment.store().await;
        let record = store.analyst("ana").await.unwrap().unwrap();
        store.close().await;
        record
    }

    async fn actions(&self) -> Vec<String> {
        let entries = self.deployment.audit_entries().await;
        entries.into_iter().map(|e| e.action).collect()
    }
}

/// The change works: the page says so, the old password no longer signs in and the new one
/// does, ana's other sessions (a browser, an API token) are ended and this one is not, and the
/// audit trail has the change.
async fn a_changed_password_replaces_the_old_one_and_ends_other_sessions(backend: Backend) {
    let at = at_the_password_page(backend).await;
    // Other sessions, signed in before the change. (Each sign-in claims its code's step: the
    // steps are let go of here so that the change and the sign-ins after it have codes.)
    at.deployment
        .execute_sql("UPDATE analysts SET totp_last_step = 0")
        .await;
    let api_token = token(&at.server, &at.ana, -1).await;
    at.deployment
        .execute_sql("UPDATE analysts SET totp_last_step = 0")
        .await;
    let (other_browser, _) = desk_sign_in(&at.server, &at.ana, -1).await;

    let changed = at
        .change(&at.ana.password, NEW_PASSWORD, NEW_PASSWORD, 0)
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    let back = changed.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(back, "/account/password?changed=2");
    let page = get(&format!("{}{back}", at.server.analyst), Some(&at.cookie)).await;
    assert_eq!(page.status(), StatusCode::OK, "this session stays");
    let page = page.text().await.unwrap();
    assert!(page.contains("Your password was changed."), "{page}");
    assert!(page.contains("2 other sessions"), "{page}");

    let queue = get(
        &format!("{}/queue", at.server.analyst),
        Some(&other_browser),
    )
    .await;
    assert_eq!(
        queue.status(),
        StatusCode::SEE_OTHER,
        "the other browser is out"
    );
    let (status, _) = api_call(
        &at.server,
        &api_token,
        reqwest::Method::GET,
        "/api/v1/tips",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the API token is ended");

    let (old, _) = sign_in(&at.server, "ana", &at.ana.password, &code(&at.ana, 1)).await;
    assert_eq!(old, StatusCode::UNAUTHORIZED, "the old password");
    let renewed = Analyst {
        password: NEW_PASSWORD.to_owned(),
        ..at.ana.clone()
    };
    token(&at.server, &renewed, 1).await;

    let record = at.record().await;
    assert!(
        record
            .password_hash
            .starts_with("$argon2id$v=19$m=65536,t=3,p=1$")
    );
    assert!(!record.password_hash.contains(NEW_PASSWORD));
    let actions = at.actions().await;
    assert!(
        actions.contains(&"password.change".to_owned()),
        "{actions:?}"
    );
    assert!(
        at.deployment.tipbox(&["audit", "verify"]).status.success(),
        "the chain holds"
    );
}

/// A wrong current password changes nothing, is refused on the form, and counts as a failed
/// sign-in does (one more failure; audited).
async fn a_wrong_current_password_is_refused_and_counted(backend: Backend) {
    let at = at_the_password_page(backend).await;
    let before = at.stored_hash().await;
    let refused = at
        .change("not the password", NEW_PASSWORD, NEW_PASSWORD, 0)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let page = refused.text().await.unwrap();
    assert!(page.contains("Wrong current password or code"), "{page}");
    assert!(page.contains("name=\"new_password\""), "the form again");
    let record = at.record().await;
    assert_eq!(record.password_hash, before);
    assert_eq!(record.failed_attempts, 1);
    assert!(
        at.actions()
            .await
            .contains(&"password.change_failure".to_owned())
    );
}

/// An account in sign-in back-off cannot change its password, even with the right one.
async fn an_account_in_back_off_cannot_change_its_password(backend: Backend) {
    let at = at_the_password_page(backend).await;
    let before = at.stored_hash().await;
    at.deployment
        .execute_sql("UPDATE analysts SET failed_attempts = 9, locked_until = 4102444800")
        .await;
    let refused = at
        .change(&at.ana.password, NEW_PASSWORD, NEW_PASSWORD, 0)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(at.stored_hash().await, before);
}

/// A repetition that differs, a password too short, and the current password again are each
/// refused with what to change — before any password is checked (nothing counted).
async fn a_mismatch_or_a_weak_password_is_refused_before_checking(backend: Backend) {
    let at = at_the_password_page(backend).await;
    let before = at.deployment.stored().await;
    for (new, again, says) in [
        (NEW_PASSWORD, "a different new passphrase", "differ"),
        ("short", "short", "too short"),
        (
            at.ana.password.as_str(),
            at.ana.password.as_str(),
            "your current one",
        ),
    ] {
        let refused = at.change(&at.ana.password, new, again, 0).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{says}");
        let page = refused.text().await.unwrap();
        assert!(page.contains(says), "{says}: {page}");
    }
    assert_eq!(
        at.deployment.stored().await,
        before,
        "nothing changed or counted"
    );
}

/// Without the session's CSRF token, or with another, nothing happens.
async fn a_change_without_the_csrf_token_is_refused(backend: Backend) {
    let at = at_the_password_page(backend).await;
    let before = at.deployment.stored().await;
    let url = format!("{}/account/password", at.server.analyst);
    let fields = [
        ("current_password", at.ana.password.as_str()),
        ("new_password", NEW_PASSWORD),
        ("new_password_again", NEW_PASSWORD),
        ("totp", &code(&at.ana, 0)),
    ];
    let missing = form(&url, Some(&at.cookie), &fields).await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut forged = vec![("csrf", "forged")];
    forged.extend(fields);
    let wrong = form(&url, Some(&at.cookie), &forged).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(at.deployment.stored().await, before);
}

on_both_backends!(
    a_changed_password_replaces_the_old_one_and_ends_other_sessions,
    a_wrong_current_password_is_refused_and_counted,
    an_account_in_back_off_cannot_change_its_password,
    a_mismatch_or_a_weak_password_is_refused_before_checking,
    a_change_without_the_csrf_token_is_refused,
);
