//! The analysts' pages over a real socket, as a browser without JavaScript uses them: sign-in
//! (CSRF-paired form, `__Host-` session cookie), the queue, a tip, triage, notes, downloads,
//! sign-out — and every way in without a valid session or CSRF token refused, changing nothing.

use reqwest::StatusCode;
use reqwest::header::LOCATION;

use crate::support::analyst::{Analyst, add_analyst, code};
use crate::support::at_rest::assert_not_stored;
use crate::support::web::{cookie_from, desk_login_form, desk_sign_in, form, get, hidden_csrf};
use crate::support::{
    Backend, Deployment, Server, decrypt, on_both_backends, open_report, random_marker, submit_ok,
    tip_form,
};

/// A deployment with alice's reviewer key, the analyst ana and one tip (a message and an
/// attachment), served.
struct Desk {
    deployment: Deployment,
    alice: age::x25519::Identity,
    ana: Analyst,
    server: Server,
}

async fn desk(backend: Backend) -> Desk {
    let deployment = Deployment::new(backend, "");
    let alice = deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let form = tip_form("a tip for the desk", &[("e.txt", b"evidence".to_vec())]);
    submit_ok(&server, form).await;
    Desk {
        deployment,
        alice,
        ana,
        server,
    }
}

/// The desk with ana signed in and looking at the tip.
struct AtTheTip {
    desk: Desk,
    /// The session's `Cookie` header value.
    cookie: String,
    tip_id: String,
    /// The tip page's form token.
    csrf: String,
}

async fn at_the_tip(backend: Backend) -> AtTheTip {
    let desk = desk(backend).await;
    let (cookie, _) = desk_sign_in(&desk.server, &desk.ana, 0).await;
    let queue = get(&desk.url("/queue"), Some(&cookie)).await;
    assert_eq!(queue.status(), StatusCode::OK);
    let queue_html = queue.text().await.unwrap();
    let at = queue_html.find("href=\"/tips/").unwrap() + 12;
    let tip_id = queue_html[at..at + 32].to_owned();
    let tip_page = get(&desk.url(&format!("/tips/{tip_id}")), Some(&cookie)).await;
    assert_eq!(tip_page.status(), StatusCode::OK);
    let csrf = hidden_csrf(&tip_page.text().await.unwrap());
    AtTheTip {
        desk,
        cookie,
        tip_id,
        csrf,
    }
}

impl Desk {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.analyst)
    }
}

impl AtTheTip {
    async fn triage(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        let url = self.desk.url(&format!("/tips/{}/triage", self.tip_id));
        form(&url, Some(&self.cookie), fields).await
    }

    async fn add_note(&self, text: &str) {
        let url = self.desk.url(&format!("/tips/{}/notes", self.tip_id));
        let noted = form(
            &url,
            Some(&self.cookie),
            &[("csrf", &self.csrf), ("text", text)],
        )
        .await;
        assert_eq!(noted.status(), StatusCode::SEE_OTHER);
    }

    async fn download(&self, path: &str) -> Vec<u8> {
        let response = get(&self.desk.url(path), Some(&self.cookie)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.bytes().await.unwrap().to_vec()
    }

    /// A desk page, which must answer 200; its HTML.
    async fn page(&self, path: &str) -> String {
        let response = get(&self.desk.url(path), Some(&self.cookie)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.text().await.unwrap()
    }

    /// Who the tip is assigned to, as stored.
    async fn assignee(&self) -> Option<String> {
        let store = self.desk.deployment.store().await;
        let tip = store.tip(&self.tip_id).await.unwrap().unwrap();
        store.close().await;
        tip.assignee
    }

    /// The id of the tip's (first) item of `kind`.
    async fn item_id(&self, kind: &str) -> String {
        let store = self.desk.deployment.store().await;
        let tip = store.tip(&self.tip_id).await.unwrap().unwrap();
        store.close().await;
        let item = tip.items.iter().find(|i| i.kind == kind);
        item.unwrap_or_else(|| panic!("no {kind} item")).id.clone()
    }
}

const TRIAGE: [(&str, &str); 3] = [
    ("status", "verified"),
    ("labels", "family, threats"),
    ("assignee", "ana"),
];

/// Without a session, pages send you to sign in and a triage is refused, changing nothing.
async fn without_a_session_pages_redirect_and_changes_are_refused(backend: Backend) {
    let desk = desk(backend).await;
    for path in ["/", "/queue", &format!("/tips/{}", "0".repeat(32))] {
        let response = get(&desk.url(path), None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()[LOCATION], "/login");
    }
    let before = desk.deployment.stored().await;
    let tip_id = &desk.deployment.tip_ids().await[0];
    let refused = form(
        &desk.url(&format!("/tips/{tip_id}/triage")),
        None,
        &[
            ("csrf", "x"),
            ("status", "spam"),
            ("labels", ""),
            ("assignee", ""),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(desk.deployment.stored().await, before);
}

/// The sign-in form's token must come with its pairing cookie; a wrong password is refused.
async fn sign_in_needs_the_pairing_cookie_and_the_password(backend: Backend) {
    let desk = desk(backend).await;
    let login = desk_login_form(&desk.server).await;
    let (pairing, csrf) = (login.cookie, login.csrf);
    let ana = &desk.ana;
    let totp = code(ana, 0);
    let unpaired = form(
        &desk.url("/login"),
        None,
        &[
            ("csrf", &csrf),
            ("username", "ana"),
            ("password", &ana.password),
            ("totp", &totp),
        ],
    )
    .await;
    assert_eq!(unpaired.status(), StatusCode::FORBIDDEN);
    let wrong = form(
        &desk.url("/login"),
        Some(&pairing),
        &[
            ("csrf", &csrf),
            ("username", "ana"),
            ("password", "nope"),
            ("totp", &totp),
        ],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_from(&wrong, "__Host-tipbox_session").is_none());
}

/// Signing in sends the browser to the queue with a host-only, secure, script-proof,
/// same-site session cookie. (The cookie's attributes do not depend on the store: on SQLite
/// only.)
#[tokio::test(flavor = "multi_thread")]
async fn signing_in_sets_a_locked_down_session_cookie() {
    let desk = desk(Backend::Sqlite).await;
    let (_, set_cookie) = desk_sign_in(&desk.server, &desk.ana, 0).await;
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
}

/// The queue links the tip; its page says what it is sealed to, lists the attachment, and
/// has no script.
async fn the_tip_page_shows_the_tip_without_script(backend: Backend) {
    let at = at_the_tip(backend).await;
    let page = get(
        &at.desk.url(&format!("/tips/{}", at.tip_id)),
        Some(&at.cookie),
    )
    .await;
    let html = page.text().await.unwrap();
    assert!(html.contains("Sealed to key set") && html.contains("attachment"));
    assert!(!html.contains("<script"));
}

/// A triage without a form token, or with a wrong one, is refused — and the tip, its labels
/// and everything else stored are as they were.
async fn triage_without_the_session_s_token_is_refused_and_changes_nothing(backend: Backend) {
    let at = at_the_tip(backend).await;
    let before = at.desk.deployment.stored().await;
    let missing = at.triage(&TRIAGE).await;
    assert_eq!(
        missing.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "without a token"
    );
    let mut forged = vec![("csrf", "wrong-token")];
    forged.extend(TRIAGE);
    assert_eq!(
        at.triage(&forged).await.status(),
        StatusCode::FORBIDDEN,
        "with a wrong token"
    );
    assert_eq!(at.desk.deployment.stored().await, before);
}

async fn triage_with_the_session_s_token_applies(backend: Backend) {
    let at = at_the_tip(backend).await;
    let mut fields = vec![("csrf", at.csrf.as_str())];
    fields.extend(TRIAGE);
    assert_eq!(at.triage(&fields).await.status(), StatusCode::SEE_OTHER);
    let store = at.desk.deployment.store().await;
    let tip = store.tip(&at.tip_id).await.unwrap().unwrap();
    store.close().await;
    assert_eq!(tip.status, "verified");
    assert_eq!(tip.labels, ["family", "threats"]);
    assert_eq!(tip.assignee.as_deref(), Some("ana"));
}

/// Triage naming someone who is not an analyst gets the desk's error page, which says so and
/// links back to the tip; nothing changes.
async fn an_unknown_assignee_gets_the_error_page_with_a_link_back(backend: Backend) {
    let at = at_the_tip(backend).await;
    let before = at.desk.deployment.stored().await;
    let refused = at
        .triage(&[
            ("csrf", &at.csrf),
            ("status", "verified"),
            ("labels", ""),
            ("assignee", "nobody-here"),
        ])
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = refused.text().await.unwrap();
    assert!(page.contains("<title>That cannot be done"), "{page}");
    assert!(
        page.contains("id=\"problem\" role=\"alert\">No such analyst to assign.</p>"),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "<a id=\"back\" href=\"/tips/{}\">Back to the tip</a>",
            at.tip_id
        )),
        "{page}"
    );
    assert!(page.contains("/static/style.css") && !page.contains("<script"));
    assert_eq!(at.desk.deployment.stored().await, before);
}

/// The tip page and the queue name statuses as people say them, and offer the active analysts
/// (and nobody) to assign, not a disabled one.
async fn statuses_read_as_words_and_assignees_are_chosen_from_the_analysts(backend: Backend) {
    let at = at_the_tip(backend).await;
    at.desk.deployment.tipbox_ok(&["analyst", "add", "ben"]);
    at.desk.deployment.tipbox_ok(&["analyst", "add", "cat"]);
    at.desk.deployment.tipbox_ok(&["analyst", "disable", "cat"]);
    let mut fields = vec![("csrf", at.csrf.as_str())];
    fields.extend([("status", "in_review"), ("labels", ""), ("assignee", "")]);
    assert_eq!(at.triage(&fields).await.status(), StatusCode::SEE_OTHER);
    let tip = at.page(&format!("/tips/{}", at.tip_id)).await;
    assert!(tip.contains("<dd id=\"status\">In review</dd>"), "{tip}");
    assert!(
        tip.contains("<option value=\"in_review\" selected>In review</option>"),
        "{tip}"
    );
    assert!(!tip.contains(">in_review<"), "{tip}");
    assert!(tip.contains("<select id=\"assignee\" name=\"assignee\">"));
    assert!(
        tip.contains("<option value=\"\" selected>Nobody</option>"),
        "{tip}"
    );
    for name in ["ana", "ben"] {
        assert!(
            tip.contains(&format!("<option value=\"{name}\">{name}</option>")),
            "{tip}"
        );
    }
    assert!(
        !tip.contains("value=\"cat\""),
        "a disabled analyst is not offered"
    );
    let queue = at.page("/queue").await;
    assert!(queue.contains("<td>In review</td>"), "{queue}");
    assert!(queue.contains(">nobody</option>") && queue.contains("<option value=\"ben\">"));
}

/// Saving the form leaves an assignee whose account was disabled since as it is; choosing
/// another assigns them.
async fn saving_the_form_keeps_a_disabled_assignee(backend: Backend) {
    let at = at_the_tip(backend).await;
    at.desk.deployment.tipbox_ok(&["analyst", "add", "ben"]);
    let assign = |assignee: &'static str, was: &'static str| {
        vec![
            ("csrf", at.csrf.clone()),
            ("status", "verified".to_owned()),
            ("labels", String::new()),
            ("assignee", assignee.to_owned()),
            ("assignee_was", was.to_owned()),
        ]
    };
    let send = async |fields: Vec<(&str, String)>| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        at.triage(&fields).await.status()
    };
    assert_eq!(send(assign("ben", "")).await, StatusCode::SEE_OTHER);
    at.desk.deployment.tipbox_ok(&["analyst", "disable", "ben"]);
    let tip = at.page(&format!("/tips/{}", at.tip_id)).await;
    assert!(
        tip.contains("<option value=\"ben\" selected>ben (disabled)</option>"),
        "{tip}"
    );
    assert_eq!(send(assign("ben", "ben")).await, StatusCode::SEE_OTHER);
    assert_eq!(at.assignee().await.as_deref(), Some("ben"));
    assert_eq!(send(assign("ana", "ben")).await, StatusCode::SEE_OTHER);
    assert_eq!(at.assignee().await.as_deref(), Some("ana"));
}

/// Labels are one label whatever their case: stored once, spelled as first written, and found
/// by a filter in any case — on the desk and through the API.
async fn labels_match_regardless_of_case(backend: Backend) {
    let at = at_the_tip(backend).await;
    let mut fields = vec![("csrf", at.csrf.as_str())];
    fields.extend([
        ("status", "new"),
        ("labels", "Threats, threats, Угрозы, THREATS"),
        ("assignee", ""),
    ]);
    assert_eq!(at.triage(&fields).await.status(), StatusCode::SEE_OTHER);
    let store = at.desk.deployment.store().await;
    let tip = store.tip(&at.tip_id).await.unwrap().unwrap();
    store.close().await;
    let mut labels = tip.labels.clone();
    labels.sort();
    assert_eq!(labels, ["Threats", "Угрозы"]);
    for (filter, found) in [("threats", true), ("УГРОЗЫ", true), ("threat", false)] {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("label", filter)
            .finish();
        let queue = at.page(&format!("/queue?{query}")).await;
        assert_eq!(queue.contains(&at.tip_id), found, "{filter}");
    }
    let tip_id = &at.tip_id;
    let ana_token = crate::support::analyst::token(&at.desk.server, &at.desk.ana, 1).await;
    let listed =
        crate::support::analyst::api_get(&at.desk.server, &ana_token, "/api/v1/tips?label=THREATS")
            .await;
    assert_eq!(listed["tips"][0]["id"], tip_id.as_str(), "{listed}");
}

/// The queue's assignee filter offers "nobody": the tips assigned to no one.
async fn the_queue_filters_the_unassigned(backend: Backend) {
    let at = at_the_tip(backend).await;
    assert!(at.page("/queue?assignee=-").await.contains(&at.tip_id));
    let mut fields = vec![("csrf", at.csrf.as_str())];
    fields.extend(TRIAGE);
    assert_eq!(at.triage(&fields).await.status(), StatusCode::SEE_OTHER);
    let unassigned = at.page("/queue?assignee=-").await;
    assert!(!unassigned.contains(&at.tip_id));
    assert!(unassigned.contains("<option value=\"-\" selected>nobody</option>"));
    assert!(at.page("/queue?assignee=ana").await.contains(&at.tip_id));
}

/// A note from the tip page is sealed to the reviewers: it opens with their key, and its text
/// is nowhere at rest.
async fn a_note_from_the_tip_page_is_sealed(backend: Backend) {
    let at = at_the_tip(backend).await;
    let marker = random_marker("NOTE-MARKER");
    at.add_note(&marker).await;
    let note = at.item_id("note").await;
    let sealed = at.download(&format!("/items/{note}/sealed")).await;
    assert!(String::from_utf8_lossy(&decrypt(&at.desk.alice, &sealed)).contains(&marker));
    assert_not_stored(&at.desk.deployment, &[marker.as_bytes()]).await;
}

/// Downloads: one sealed item, and everything as one archive; both open with the key.
async fn downloads_open_with_the_reviewer_key(backend: Backend) {
    let at = at_the_tip(backend).await;
    at.add_note("a note").await;
    let report = at.item_id("report").await;
    let sealed = at.download(&format!("/items/{report}/sealed")).await;
    assert_eq!(
        open_report(&decrypt(&at.desk.alice, &sealed)).0,
        "a tip for the desk"
    );
    let archive = at.download(&format!("/tips/{}/archive", at.tip_id)).await;
    let mut entries = tar::Archive::new(archive.as_slice());
    let mut opened = 0;
    for entry in entries.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if path.ends_with(".age") {
            decrypt(&at.desk.alice, &data);
            opened += 1;
        } else {
            assert!(path.ends_with("manifest.json"));
        }
    }
    assert_eq!(opened, 3, "report, attachment, note");
}

async fn an_expired_session_is_refused(backend: Backend) {
    let at = at_the_tip(backend).await;
    at.desk
        .deployment
        .execute_sql("UPDATE sessions SET expires_at = 0")
        .await;
    let response = get(&at.desk.url("/queue"), Some(&at.cookie)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login");
}

/// Sign-out needs the session's token; then the session is gone server-side and the browser
/// is told to forget it.
async fn signing_out_ends_the_session(backend: Backend) {
    let at = at_the_tip(backend).await;
    let logout = at.desk.url("/logout");
    let refused = form(&logout, Some(&at.cookie), &[("csrf", "wrong")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get(&at.desk.url("/queue"), Some(&at.cookie)).await.status(),
        StatusCode::OK,
        "a refused sign-out leaves the session"
    );
    let out = form(&logout, Some(&at.cookie), &[("csrf", &at.csrf)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()["clear-site-data"]
            .to_str()
            .unwrap()
            .contains("cookies")
    );
    assert_eq!(
        get(&at.desk.url("/queue"), Some(&at.cookie)).await.status(),
        StatusCode::SEE_OTHER
    );
}

/// None of the desk exists on the public listener. (Routing: on SQLite only.)
#[tokio::test(flavor = "multi_thread")]
async fn the_desk_is_not_on_the_public_listener() {
    let at = at_the_tip(Backend::Sqlite).await;
    for path in ["/login", "/queue", &format!("/tips/{}", at.tip_id)] {
        let response = get(&format!("{}{path}", at.desk.server.public), None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

on_both_backends!(
    without_a_session_pages_redirect_and_changes_are_refused,
    sign_in_needs_the_pairing_cookie_and_the_password,
    the_tip_page_shows_the_tip_without_script,
    triage_without_the_session_s_token_is_refused_and_changes_nothing,
    triage_with_the_session_s_token_applies,
    an_unknown_assignee_gets_the_error_page_with_a_link_back,
    statuses_read_as_words_and_assignees_are_chosen_from_the_analysts,
    saving_the_form_keeps_a_disabled_assignee,
    labels_match_regardless_of_case,
    the_queue_filters_the_unassigned,
    a_note_from_the_tip_page_is_sealed,
    downloads_open_with_the_reviewer_key,
    an_expired_session_is_refused,
    signing_out_ends_the_session,
);
