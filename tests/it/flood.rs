//! Staying open under a flood: Tor circuits told apart by tor's PROXY header (and connections
//! without one closed), budgets that one client cannot spend for another, junk refused cheaply
//! with a page, deadlines that cut slow clients off on both listeners, a cap on connections per
//! client, and no HTTP/2 on plain listeners.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::at_rest::log_names_no_client;
use crate::support::circuits::{Circuit, connect_as};
use crate::support::{Backend, Deployment, Server, client, submit_at, tip_form, tor_header};

/// A deployment whose public listener expects tor's PROXY header.
fn behind_tor(extra_rate_limits: &str) -> Deployment {
    let deployment = Deployment::new(
        Backend::Sqlite,
        &format!(
            "[limits]\nheader_read_timeout_seconds = 2\nbody_timeout_seconds = 2\n\
             [rate_limits]\nclient_address = \"tor-circuit\"\n{extra_rate_limits}"
        ),
    );
    deployment.add_reviewer("alice");
    deployment
}

/// Everything the server sends until it closes the connection (or `within` passes: `None`).
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut seen)).await {
        Ok(_) => Some(String::from_utf8_lossy(&seen).into_owned()),
        Err(_) => None,
    }
}

async fn raw(server: &Server) -> TcpStream {
    TcpStream::connect(server.public.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// A connection that does not start with the line tor writes — missing, garbage, cut short,
/// too long, the binary v2 form, another proxy's addresses — is closed without an answer, and
/// the log says what to fix in the torrc without naming any circuit.
#[tokio::test(flavor = "multi_thread")]
async fn connections_without_tors_proxy_header_are_closed() {
    let deployment = behind_tor("");
    let server = deployment.start();
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24".to_vec();
    v2.extend_from_slice(&[
        0xfc, 0, 0xde, 0xad, 0xbe, 0xef, 0x4d, 0xad, 0, 0, 0, 0, 0, 1, 0, 2,
    ]);
    v2.extend_from_slice(&[0; 20]);
    let oversized = format!("PROXY TCP6 {}\r\n", "f".repeat(200));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("missing", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("garbage", b"\x16\x03\x01\x02\x00garbage\r\n".to_vec()),
        (
            "truncated",
            b"PROXY TCP6 fc00:dead:beef:4dad::1:2 ::1 0 44".to_vec(),
        ),
        ("oversized", oversized.into_bytes()),
        ("v2 binary", v2),
        (
            "not tor",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 1000 443\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
                .to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        let started = Instant::now();
        let mut stream = raw(&server).await;
        let _ = stream.write_all(&bytes).await;
        let answer = until_closed(&mut stream, Duration::from_secs(6))
            .await
            .unwrap_or_else(|| panic!("{what}: still open"));
        assert!(answer.is_empty(), "{what}: answered {answer:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: {:?}",
            started.elapsed()
        );
    }
    // The line tor writes, then HTTP: answered.
    let mut stream = connect_as(&server.public, 0x0001_0002).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut stream, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let log = deployment.log();
    assert!(
        log.contains("HiddenServiceExportCircuitID haproxy"),
        "the log says what to fix: {log}"
    );
    for id in ["fc00:dead", "65538", "0x10002", "1:2 "] {
        assert!(!log.contains(id), "the log names no circuit ({id})");
    }
    assert!(log_names_no_client(&deployment));
}

/// Two circuits do not share a budget: one spending its page budget leaves the other's whole.
#[tokio::test(flavor = "multi_thread")]
async fn two_circuits_do_not_share_a_budget() {
    let deployment = behind_tor("pages_per_minute = 1\npages_burst = 3\n");
    let server = deployment.start();
    let (a, b) = (
        Circuit::open(&server.public, 7).await,
        Circuit::open(&server.public, 8).await,
    );
    let status = |circuit: &Circuit| {
        let url = format!("{}/?lang=zh-Hans", circuit.url);
        async move { client().get(url).send().await.unwrap() }
    };
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(status(&a).await.status());
    }
    assert_eq!(statuses[..3], [StatusCode::OK; 3], "{statuses:?}");
    assert_eq!(statuses[3..], [StatusCode::TOO_MANY_REQUESTS; 2]);
    let refused = status(&a).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert!(refused.text().await.unwrap().contains("请求过多"));
    for _ in 0..3 {
        assert_eq!(
            status(&b).await.status(),
            StatusCode::OK,
            "circuit b is untouched"
        );
    }
}

/// Junk — empty or broken forms, a missing token — is refused at once with a page in the
/// visitor's language, stores nothing and costs only its sender: its sign-in junk does not
/// spend anyone's submissions, nor its own.
#[tokio::test(flavor = "multi_thread")]
async fn junk_is_refused_cheaply_and_costs_only_its_sender() {
    let deployment = behind_tor("signins_per_minute = 1\nsignins_burst = 5\nforms_burst = 2\n");
    let server = deployment.start();
    let flooder = Circuit::open(&server.public, 1).await;
    let source = Circuit::open(&server.public, 2).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = client()
            .post(format!("{}/followup?lang=en", flooder.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let page = response.text().await.unwrap();
        assert!(
            page.contains("<html lang=\"en\""),
            "a page, not bare text: {page}"
        );
        statuses.push(status);
    }
    assert!(
        statuses[..5]
            .iter()
            .all(|s| s.is_client_error() && *s != StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(statuses[5..], [StatusCode::TOO_MANY_REQUESTS; 7]);
    // A broken multipart body from the flooder: refused, nothing stored.
    let broken = client()
        .post(format!("{}/submit?lang=en", flooder.url))
        .header("content-type", "multipart/form-data; boundary=X")
        .body("--X\r\nnot a part")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    // The flooder's own forms budget was not spent by its sign-in junk, nor the source's.
    for (circuit, form) in [
        (&flooder, tip_form("from the flooder's circuit", &[])),
        (
            &source,
            tip_form("a genuine tip", &[("photo.jpg", vec![9u8; 100_000])]),
        ),
    ] {
        let (status, page) = submit_at(&circuit.url, form, "en").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("id=\"receipt\""));
    }
    assert_eq!(deployment.counts().await.tips, 2);
}

/// Trickles `body` to `path` on `base` one byte every 400 ms; how long until the server closed.
async fn trickle(stream: &mut TcpStream, head: &str, body: &[u8]) -> (Duration, String) {
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    for byte in body {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        if started.elapsed() > Duration::from_secs(15) {
            break;
        }
    }
    let answer = until_closed(stream, Duration::from_secs(10))
        .await
        .unwrap_or_default();
    (started.elapsed(), answer)
}

/// A small form trickled byte by byte — steadily, so that no inactivity timer fires — is cut
/// off at its deadline on both listeners, with 408; so is a request head that never ends, and
/// an idle connection is closed.
#[tokio::test(flavor = "multi_thread")]
async fn trickled_forms_are_cut_off_at_their_deadline_on_both_listeners() {
    let deployment = behind_tor("");
    let server = deployment.start();
    let form = b"csrf=abcdefghijklmnopqrstuvwxyz&receipt=abcdefghijklmnopqrstuvwxyz";
    let head = |host: &str, path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n",
            form.len()
        )
    };
    let mut public = connect_as(&server.public, 5).await;
    let (took, answer) = trickle(&mut public, &head("x", "/followup?lang=en"), form).await;
    assert!(took < Duration::from_secs(6), "public: {took:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("too slow"),
        "a page that says why: {answer}"
    );

    let analyst = server.analyst.trim_start_matches("http://");
    let mut desk = TcpStream::connect(analyst).await.unwrap();
    let (took, answer) = trickle(&mut desk, &head("x", "/login"), form).await;
    assert!(took < Duration::from_secs(6), "analyst: {took:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A head that never ends, and a connection that sends nothing after tor's line.
    let mut head_only = connect_as(&server.public, 6).await;
    let (took, _) = trickle(
        &mut head_only,
        "GET / HTTP/1.1\r\n",
        b"X-Slow: 1234567890123456",
    )
    .await;
    assert!(took < Duration::from_secs(6), "head: {took:?}");
    let started = Instant::now();
    let mut idle = connect_as(&server.public, 7).await;
    assert!(
        until_closed(&mut idle, Duration::from_secs(6))
            .await
            .is_some()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // And the listeners still answer.
    let circuit = Circuit::open(&server.public, 8).await;
    assert_eq!(
        client().get(&circuit.url).send().await.unwrap().status(),
        StatusCode::OK
    );
}

/// An upload that sends fast, then trickles, is cut off once the last window fell short: a
/// fast start buys no time. The page says why and nothing is stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_trickle_after_a_burst_is_cut_off() {
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[limits]\nmin_upload_bytes_per_second = 10000\nupload_rate_window_seconds = 3\n",
    );
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let mut stream = raw(&server).await;
    let burst = vec![b'x'; 400_000];
    let head = "POST /submit?lang=en HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 2000000\r\n\r\n\
         --B\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"a.bin\"\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&burst).await.unwrap();
    let started = Instant::now();
    let (_, answer) = trickle(&mut stream, "", &[b'y'; 40]).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(9), "{took:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("too slow"), "{answer}");
    assert_eq!(deployment.counts().await.tips, 0);
    assert_eq!(deployment.counts().await.items, 0);
}

/// A client holds at most its share of connections: past it, new ones are closed at once while
/// its others (and other clients) are served.
#[tokio::test(flavor = "multi_thread")]
async fn connections_per_client_are_capped() {
    let deployment = behind_tor("max_connections_per_client = 2\n");
    let server = deployment.start();
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(connect_as(&server.public, 9).await);
    }
    // Let the server read both lines before the third arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = connect_as(&server.public, 9).await;
    let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = until_closed(&mut third, Duration::from_secs(1)).await;
    assert_eq!(answer.as_deref(), Some(""), "closed without an answer");
    for stream in &mut held {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = until_closed(stream, Duration::from_secs(5)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let other = Circuit::open(&server.public, 10).await;
    assert_eq!(
        client().get(&other.url).send().await.unwrap().status(),
        StatusCode::OK
    );
}

/// Plain listeners speak HTTP/1.1 only: one connection (one Tor stream) cannot carry many
/// requests at once outside the per-connection accounting.
#[tokio::test(flavor = "multi_thread")]
async fn plain_listeners_do_not_speak_http2() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    // Refused, or never answered: either way not served (the timeout keeps a hang a failure
    // of this request, not of the test run).
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for url in [&server.public, &server.analyst] {
        assert!(h2.get(format!("{url}/")).send().await.is_err(), "{url}");
    }
    assert_eq!(
        client()
            .get(format!("{}/", server.public))
            .send()
            .await
            .unwrap()
            .version(),
        reqwest::Version::HTTP_11
    );
}

/// With `client_address = "none"` the server warns at start-up that one client can lock
/// sources out; a retired budget setting is refused with what replaces it.
#[tokio::test(flavor = "multi_thread")]
async fn start_up_says_what_the_client_setting_means() {
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[rate_limits]\nclient_address = \"none\"\n",
    );
    deployment.add_reviewer("alice");
    let _server = deployment.start();
    assert!(
        deployment.log().contains("can lock every source out"),
        "{}",
        deployment.log()
    );
    let retired = Deployment::new(Backend::Sqlite, "[rate_limits]\npublic_per_second = 5\n");
    let out = retired.tipbox(&["keys", "list"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("rate_limits.pages_per_minute"), "{said}");
    // tor's line, as the relay writes it, is the form the server reads.
    assert!(tor_header(1).starts_with("PROXY TCP6 fc00:dead:beef:4dad::"));
}

/// A source that arrives while a trickling upload holds the only slot does not wait for the
/// trickle's window to run out: the trickle gives up its slot at once ("too slow"), and the
/// source gets its receipt.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_takes_the_slot_of_a_trickling_upload() {
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[limits]\nmax_concurrent_submissions = 1\nmin_upload_bytes_per_second = 1000\n\
         upload_rate_window_seconds = 60\n\
         [rate_limits]\nclient_address = \"tor-circuit\"\n",
    );
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let mut trickler = connect_as(&server.public, 1).await;
    let head = "POST /submit?lang=en HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n\r\n\
         --B\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"a.bin\"\r\n\r\n";
    let trickle = tokio::spawn(async move {
        let (_, answer) = trickle(&mut trickler, head, &[b'x'; 60]).await;
        answer
    });
    // Long enough for the slot's holder to have a rate to judge (2 s), far short of its window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let source = Circuit::open(&server.public, 2).await;
    let started = Instant::now();
    let (status, page) = submit_at(&source.url, tip_form("a genuine tip", &[]), "en").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "served at once, not after the trickle's window: {:?}",
        started.elapsed()
    );
    let answer = trickle.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(deployment.counts().await.tips, 1);
}
