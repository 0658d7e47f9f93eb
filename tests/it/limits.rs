//! Request budgets over a real socket: a burst beyond the budget gets 429 with a localized
//! page and `Retry-After`, the server stays up, a flood of one kind does not use up the other
//! kind's budget, and a genuine submission goes through once the budget refills. With
//! per-client budgets, one client's flood leaves another client alone, and a client that is
//! not the trusted proxy cannot choose its budget by forging `X-Forwarded-For`.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::multipart::Form;

use crate::support::analyst::{add_analyst, review_login, review_pull};
use crate::support::at_rest::log_names_no_client;
use crate::support::{
    Backend, Deployment, Server, client, install_tls_provider, submit_ok, tip_form,
};

/// Posts a genuine tip in `lang`; the response itself (its headers matter here).
async fn post_tip(server: &Server, lang: &str) -> reqwest::Response {
    client()
        .post(format!("{}/submit?lang={lang}", server.public))
        .multipart(Form::new().text("message", "a genuine tip"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_gets_429_and_the_tip_line_stays_up() {
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[rate_limits]\npages_per_minute = 120\npages_burst = 10\n\
         forms_per_minute = 60\nforms_burst = 3\n",
    );
    deployment.add_reviewer("alice");
    let server = deployment.start();

    // A burst of submissions: the first three are taken, the rest refused with a page in the
    // visitor's language, and nothing of them is stored.
    let mut accepted = 0;
    let mut refused = 0;
    for _ in 0..8 {
        let response = post_tip(&server, "zh-Hans").await;
        match response.status() {
            StatusCode::OK => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                let wait: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=5).contains(&wait), "{wait}");
                let page = response.text().await.unwrap();
                assert!(page.contains("<html lang=\"zh-Hans\""), "{page}");
                assert!(page.contains("请求过多"), "{page}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(accepted >= 3 && refused >= 4, "{accepted} {refused}");
    assert_eq!(deployment.counts().await.tips, accepted);

    // Pages have their own budget: the flood of forms did not use it up.
    let landing = client()
        .get(format!("{}/?lang=en", server.public))
        .send()
        .await
        .unwrap();
    assert_eq!(landing.status(), StatusCode::OK);

    // A flood of page loads, in turn, leaves the forms' budget alone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut pages_refused = 0;
    for _ in 0..30 {
        let response = client()
            .get(format!("{}/submit?lang=en", server.public))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            pages_refused += 1;
            assert!(response.text().await.unwrap().contains("Too many requests"));
        }
    }
    assert!(pages_refused > 0);
    let response = post_tip(&server, "en").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the forms' budget was untouched"
    );
    assert!(response.text().await.unwrap().contains("id=\"receipt\""));
    // The analyst listener has its own budget as well, and answers.
    let health = client()
        .get(format!("{}/health", server.analyst))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // The log never names a client.
    assert!(log_names_no_client(&deployment));
}

/// Page budgets of 3 at once (one more a second) per client behind the trusted proxy 127.0.0.1.
fn behind_a_proxy() -> Deployment {
    Deployment::new(
        Backend::Sqlite,
        "[rate_limits]\nclient_address = \"forwarded\"\ntrusted_proxies = [\"127.0.0.1\"]\n\
         pages_per_minute = 60\npages_burst = 3\n",
    )
}

/// A client connecting from `from` (a loopback address of this machine), sending
/// `X-Forwarded-For: 198.51.100.7, CLIENT` for the `client` it names: the landing page's status.
async fn landing_from(server: &Server, from: [u8; 4], client: &str) -> StatusCode {
    install_tls_provider();
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(from))
        .build()
        .unwrap()
        .get(format!("{}/?lang=en", server.public))
        .header("x-forwarded-for", format!("198.51.100.7, {client}"))
        .send()
        .await
        .unwrap()
        .status()
}

/// The trusted proxy.
const PROXY: [u8; 4] = [127, 0, 0, 1];
/// A client that connects directly, on another loopback address.
const STRANGER: [u8; 4] = [127, 0, 0, 2];

/// With `client_address = "forwarded"`, each client behind the trusted proxy has its own
/// budget.
#[tokio::test(flavor = "multi_thread")]
async fn per_client_budgets_behind_a_trusted_proxy() {
    let deployment = behind_a_proxy();
    let server = deployment.start();
    let mut flood = Vec::new();
    for _ in 0..8 {
        flood.push(landing_from(&server, PROXY, "203.0.113.1").await);
    }
    assert!(flood.contains(&StatusCode::TOO_MANY_REQUESTS), "{flood:?}");
    assert!(
        flood
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS),
        "{flood:?}"
    );
    // Another client behind the same proxy is not affected.
    assert_eq!(
        landing_from(&server, PROXY, "203.0.113.2").await,
        StatusCode::OK
    );
    assert!(log_names_no_client(&deployment));
    assert!(
        !deployment.log().contains("203.0.113."),
        "client addresses are never logged"
    );
}

/// A client that is not the proxy is keyed by its own address whatever header it sends: a new
/// forged address on every request buys it no budget, and naming another client's address
/// does not spend that client's budget.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_forwarded_header_from_another_peer_buys_nothing() {
    let deployment = behind_a_proxy();
    let server = deployment.start();
    let started = std::time::Instant::now();
    let mut flood = Vec::new();
    for n in 0..8 {
        flood.push(landing_from(&server, STRANGER, &format!("203.0.113.{}", 10 + n)).await);
    }
    // Its burst of 3, and one more for each second the flood took (the budget refills).
    let refilled = started.elapsed().as_secs() as usize + 1;
    assert!(flood[..3].iter().all(|s| *s == StatusCode::OK), "{flood:?}");
    let refused = flood
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        refused + flood.iter().filter(|s| **s == StatusCode::OK).count(),
        8
    );
    assert!(refused >= 5 - refilled.min(5), "{flood:?}");
    // Forging the address of a client behind the proxy spends nothing of that client's.
    let mut forged = Vec::new();
    for _ in 0..4 {
        forged.push(landing_from(&server, STRANGER, "203.0.113.2").await);
    }
    assert!(
        forged.contains(&StatusCode::TOO_MANY_REQUESTS)
            && forged
                .iter()
                .all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS),
        "{forged:?}"
    );
    for _ in 0..3 {
        assert_eq!(
            landing_from(&server, PROXY, "203.0.113.2").await,
            StatusCode::OK
        );
    }
    assert!(log_names_no_client(&deployment));
    assert!(
        !deployment.log().contains("127.0.0.2"),
        "nor a peer's address"
    );
}

#[test]
fn a_forwarded_mode_without_a_proxy_is_refused() {
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[rate_limits]\nclient_address = \"forwarded\"\n",
    );
    let out = deployment.tipbox(&["keys", "list"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rate_limits.trusted_proxies"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads until the server answers or closes; returns what was read, or `None` if the connection
/// was still open after `within`.
fn read_until_closed(stream: &mut std::net::TcpStream, within: Duration) -> Option<String> {
    use std::io::Read;
    stream.set_read_timeout(Some(within)).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&seen).into_owned());
            }
            Err(_) => return None,
        }
    }
}

/// Slow-header, idle and slow-body clients are cut off, so they cannot hold connections open.
#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_clients_are_cut_off() {
    use std::io::Write;
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[limits]\nheader_read_timeout_seconds = 2\nbody_timeout_seconds = 2\n",
    );
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let address = server.public.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        // Headers that never end.
        let started = std::time::Instant::now();
        let mut slow = std::net::TcpStream::connect(&address).unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: tipbox\r\nX-Slow: 1\r\n")
            .unwrap();
        assert!(read_until_closed(&mut slow, Duration::from_secs(8)).is_some());
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{:?}",
            started.elapsed()
        );

        // A kept-alive connection left idle after its answer.
        let mut idle = std::net::TcpStream::connect(&address).unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nHost: tipbox\r\n\r\n")
            .unwrap();
        let answered = read_until_closed(&mut idle, Duration::from_secs(8))
            .expect("the idle connection is closed");
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

        // A small form whose body stalls.
        let started = std::time::Instant::now();
        let mut body = std::net::TcpStream::connect(&address).unwrap();
        body.write_all(
            b"POST /followup HTTP/1.1\r\nHost: tipbox\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncsrf=",
        )
        .unwrap();
        assert!(read_until_closed(&mut body, Duration::from_secs(8)).is_some());
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{:?}",
            started.elapsed()
        );
    })
    .await
    .unwrap();
    // And the server still answers.
    let response = client()
        .get(format!("{}/", server.public))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Below the free-space threshold a submission gets a 503 page before anything is written.
#[tokio::test(flavor = "multi_thread")]
async fn short_of_disk_space_nothing_is_written() {
    // No disk here has a pebibyte free: the guard always trips.
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[limits]\nmin_free_disk_bytes = 1125899906842624\n",
    );
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let before = deployment.counts().await;
    let response = client()
        .post(format!("{}/submit?lang=en", server.public))
        .multipart(Form::new().text("message", "a tip").part(
            "attachment",
            reqwest::multipart::Part::bytes(vec![7u8; 3 << 20]).file_name("big.bin"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let page = response.text().await.unwrap();
    assert!(page.contains("cannot store reports right now"), "{page}");
    assert!(page.contains("Nothing was stored"));
    assert_eq!(deployment.counts().await, before);
    assert_eq!(before.items, 0);
    assert!(deployment.log().contains("short of space"));
}

/// `tipbox review pull` waits out the analyst listener's budget (429 + Retry-After) instead of
/// failing half way through a pull.
#[tokio::test(flavor = "multi_thread")]
async fn review_pull_waits_out_the_budget() {
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[rate_limits]\nanalyst_per_second = 2\nanalyst_burst = 3\n",
    );
    deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let files: Vec<(&str, Vec<u8>)> = ["f0.bin", "f1.bin", "f2.bin", "f3.bin"]
        .into_iter()
        .zip(0u8..)
        .map(|(name, n)| (name, vec![n; 100]))
        .collect();
    submit_ok(&server, tip_form("six items", &files)).await;
    let home = deployment.path().join("review-home");
    review_login(&home, &server, &ana, 0);
    let pulled = deployment.path().join("pulled");
    review_pull(&home, &deployment.identity_file("alice"), &pulled, &[]);
    let tip = std::fs::read_dir(&pulled)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    assert_eq!(
        std::fs::read_dir(tip.join("attachments")).unwrap().count(),
        4,
        "every item pulled despite the budget"
    );
}
