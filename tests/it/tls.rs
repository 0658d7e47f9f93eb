//! TLS on the listeners, over real sockets with certificates generated here: TLS 1.2 and 1.3
//! only, HSTS and `Onion-Location`, a certificate swapped and reloaded on SIGHUP (the next
//! connection gets the new one, an open connection keeps working), and a start refused when a
//! certificate or key does not load.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Backend, Deployment, client, install_tls_provider};

/// The Tor Project's onion service: a valid v3 address.
const ONION: &str = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";

/// A certificate authority made for one test.
struct Ca(CertifiedIssuer<'static, KeyPair>);

/// A server certificate and its key.
struct ServerCert {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Self(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    /// A certificate for `localhost` and 127.0.0.1, signed by this CA.
    fn server_cert(&self, name: &str) -> ServerCert {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A reqwest client that trusts this CA only and reports the server's certificate.
    fn client(&self) -> reqwest::Client {
        self.client_builder().build().unwrap()
    }

    fn client_builder(&self) -> reqwest::ClientBuilder {
        install_tls_provider();
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.0.pem().as_bytes()).unwrap()])
            .tls_info(true)
            .redirect(reqwest::redirect::Policy::none())
    }

    /// A rustls client configuration that trusts this CA only, for the given versions and ALPN.
    fn rustls_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.0.der().clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }
}

impl ServerCert {
    /// Writes the files the way certificate tools do: a new file renamed over the old one.
    fn install(&self, files: &TlsPaths) {
        replace_file(&files.cert, &self.cert_pem);
        replace_file(&files.key, &self.key_pem);
    }
}

fn replace_file(path: &Path, contents: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, contents).unwrap();
    std::fs::rename(&new, path).unwrap();
}

struct TlsPaths {
    cert: PathBuf,
    key: PathBuf,
}

impl TlsPaths {
    fn in_dir(deployment: &Deployment, name: &str) -> Self {
        let dir = deployment.path().join("tls");
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        }
    }

    fn toml(&self) -> String {
        format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"",
            self.cert.display(),
            self.key.display()
        )
    }
}

/// `host:port` of a listener URL.
fn address(url: &str) -> &str {
    url.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
}

fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info on the response")
        .peer_certificate()
        .expect("the server's certificate")
        .to_vec()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// A TLS handshake with a rustls client.
async fn handshake(
    server: &str,
    config: rustls::ClientConfig,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(address(server)).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Everything the server sends on a raw connection after `bytes`, until it closes (or 10 s).
async fn raw_exchange(server: &str, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(address(server)).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    answer
}

/// A TLS 1.1 ClientHello (no `supported_versions` extension, so nothing newer is offered). It
/// carries `signature_algorithms`, so that only its version can be what the server refuses.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version: TLS 1.1
    body.extend([0x42; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA-AES128-SHA, AES128-SHA
    body.extend([0x01, 0x00]); // compression: null
    // Extensions: signature_algorithms (13) with rsa_pkcs1_sha256, ecdsa_secp256r1_sha256.
    body.extend([
        0x00, 0x0a, 0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x01, 0x04, 0x03,
    ]);
    let mut handshake = vec![0x01, 0x00, 0x00, body.len() as u8]; // ClientHello
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8];
    record.extend(handshake);
    record
}

/// Waits until the server's log has `count` lines containing `needle`.
fn wait_for_log(deployment: &Deployment, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while deployment.log().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "no {count}× {needle:?} in the log:\n{}",
            deployment.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A deployment with TLS on both listeners and an onion address, serving `cert`.
fn tls_deployment(cert: &ServerCert) -> (Deployment, TlsPaths) {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let files = TlsPaths::in_dir(&deployment, "server");
    cert.install(&files);
    deployment.add_to_section(
        "public",
        &format!("{}\nonion_address = \"{ONION}\"", files.toml()),
    );
    deployment.add_to_section("analyst", &files.toml());
    (deployment, files)
}

#[tokio::test(flavor = "multi_thread")]
async fn both_listeners_speak_tls_1_2_and_1_3_only_with_hsts_and_onion_location() {
    let ca = Ca::new("tipbox test CA");
    let cert = ca.server_cert("tipbox test server");
    let (deployment, _files) = tls_deployment(&cert);
    let server = deployment.start();
    assert!(server.public.starts_with("https://"), "{}", server.public);
    assert!(server.analyst.starts_with("https://"), "{}", server.analyst);
    let client = ca.client();

    // The public listener over HTTPS: our certificate, HTTP/2 by ALPN, HSTS, Onion-Location
    // with the page's path and query.
    let response = client
        .get(format!("{}/followup?lang=zh-Hans", server.public))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(peer_certificate(&response), cert.der);
    assert_eq!(
        header(&response, "strict-transport-security"),
        Some("max-age=63072000")
    );
    assert_eq!(
        header(&response, "onion-location"),
        Some(format!("http://{ONION}/followup?lang=zh-Hans").as_str())
    );
    // The other security headers are still there.
    assert!(header(&response, "content-security-policy").is_some());
    // Over TLS the receipt form's cookie is a `__Host-` cookie, `Secure`.
    let cookie = header(&response, "set-cookie").unwrap();
    assert!(
        cookie.starts_with("__Host-tipbox_signin=") && cookie.contains("; Secure"),
        "{cookie}"
    );

    // HTTP/1.1 works too.
    let http1 = ca.client_builder().http1_only().build().unwrap();
    let response = http1.get(&server.public).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(
        header(&response, "onion-location"),
        Some(format!("http://{ONION}/").as_str())
    );

    // The analyst listener: HTTPS with HSTS, and no Onion-Location (that is the public side's).
    let response = client
        .get(format!("{}/health", server.analyst))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(peer_certificate(&response), cert.der);
    assert_eq!(
        header(&response, "strict-transport-security"),
        Some("max-age=63072000")
    );
    assert_eq!(header(&response, "onion-location"), None);

    // TLS 1.3 and TLS 1.2 are each negotiated when they are all the client offers; ALPN
    // prefers h2 and falls back to http/1.1.
    let tls13 = handshake(
        &server.public,
        ca.rustls_config(&[&rustls::version::TLS13], &[b"h2", b"http/1.1"]),
    )
    .await
    .unwrap();
    assert_eq!(
        tls13.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(tls13.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let tls12 = handshake(
        &server.analyst,
        ca.rustls_config(&[&rustls::version::TLS12], &[b"http/1.1"]),
    )
    .await
    .unwrap();
    assert_eq!(
        tls12.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(tls12.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    drop((tls13, tls12));

    // A TLS 1.1 client is refused with a protocol_version alert.
    for listener in [&server.public, &server.analyst] {
        let answer = raw_exchange(listener, &tls11_client_hello()).await;
        assert!(answer.len() >= 7, "answer to TLS 1.1: {answer:02x?}");
        assert_eq!(answer[0], 0x15, "an alert record: {answer:02x?}");
        assert_eq!(
            &answer[5..7],
            &[2, 70],
            "fatal protocol_version: {answer:02x?}"
        );
    }

    // Plain HTTP to a TLS listener gets no page: it never falls back to plaintext.
    for listener in [&server.public, &server.analyst] {
        let answer = raw_exchange(listener, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(
            !String::from_utf8_lossy(&answer).contains("HTTP/"),
            "plaintext answer: {}",
            String::from_utf8_lossy(&answer)
        );
    }

    // A client that does not trust the certificate cannot connect.
    let stranger = Ca::new("another CA");
    assert!(stranger.client().get(&server.public).send().await.is_err());

    // The log names no client, and says which scheme each listener serves.
    let log = deployment.log();
    assert!(
        log.contains("public listener on https://127.0.0.1:"),
        "{log}"
    );
    assert!(!log.contains("127.0.0.1:0"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_swapped_certificate_is_served_after_sighup_while_open_connections_keep_working() {
    let old_ca = Ca::new("tipbox old CA");
    let new_ca = Ca::new("tipbox new CA");
    let old_cert = old_ca.server_cert("tipbox old server");
    let new_cert = new_ca.server_cert("tipbox new server");
    let (deployment, files) = tls_deployment(&old_cert);
    let server = deployment.start();

    // Connections opened before the swap: HTTP/1.1 keep-alive and HTTP/2, trusting only the
    // old CA. Neither client could make a new connection once the new certificate is served.
    let keep_alive = old_ca.client_builder().http1_only().build().unwrap();
    let multiplexed = old_ca.client();
    for client in [&keep_alive, &multiplexed] {
        let response = client.get(&server.public).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(peer_certificate(&response), old_cert.der);
        response.bytes().await.unwrap();
    }
    // A request in flight over the swap: a slow body the server is still reading.
    let (body_tx, body_rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let in_flight = {
        let client = old_ca.client_builder().http1_only().build().unwrap();
        let url = format!("{}/followup", server.public);
        let body = reqwest::Body::wrap_stream(tokio_stream_from(body_rx));
        tokio::spawn(async move {
            client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
        })
    };
    // The channel holds one chunk: the second send returns once the client has taken the
    // first, that is once its connection is up and the request is being sent.
    body_tx.send(Ok(b"receipt=".to_vec())).await.unwrap();
    body_tx.send(Ok(b"abandon".to_vec())).await.unwrap();

    new_cert.install(&files);
    server.hangup();
    // Both listeners reload (they share the files here).
    wait_for_log(&deployment, "reloaded the TLS certificate and key", 2);

    // A new connection gets the new certificate.
    let response = new_ca.client().get(&server.public).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(peer_certificate(&response), new_cert.der);
    let response = new_ca
        .client()
        .get(format!("{}/health", server.analyst))
        .send()
        .await
        .unwrap();
    assert_eq!(peer_certificate(&response), new_cert.der);
    // ... and a client that trusts only the old CA cannot make one any more.
    assert!(old_ca.client().get(&server.public).send().await.is_err());

    // The connections opened before go on, with the certificate they were opened with.
    for client in [&keep_alive, &multiplexed] {
        let response = client
            .get(format!("{}/followup", server.public))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(peer_certificate(&response), old_cert.der);
    }
    // The request in flight finishes normally.
    body_tx.send(Ok(b"+ability+able".to_vec())).await.unwrap();
    drop(body_tx);
    let response = in_flight.await.unwrap().unwrap();
    assert!(
        response.status().is_success() || response.status().is_client_error(),
        "{}",
        response.status()
    );
    assert_eq!(peer_certificate(&response), old_cert.der);

    // A reload that fails (a key that is not the certificate's) keeps the certificate in force.
    let stray_key = KeyPair::generate().unwrap().serialize_pem();
    replace_file(&files.key, &stray_key);
    server.hangup();
    wait_for_log(
        &deployment,
        "could not reload the TLS certificate and key, still serving the previous ones",
        2,
    );
    let log = deployment.log();
    assert!(
        log.contains("public.tls_key") && log.contains("is not the private key"),
        "{log}"
    );
    let response = new_ca.client().get(&server.public).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(peer_certificate(&response), new_cert.der);

    // Put right, the next SIGHUP loads it; the server ran through every SIGHUP.
    let newest = new_ca.server_cert("tipbox newest server");
    newest.install(&files);
    server.hangup();
    wait_for_log(&deployment, "reloaded the TLS certificate and key", 4);
    let response = new_ca.client().get(&server.public).send().await.unwrap();
    assert_eq!(peer_certificate(&response), newest.der);
    assert!(server.stop().success());
}

/// A stream of body chunks from a channel.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_tor_plain_http_gets_onion_location_only_for_clearnet_names_and_no_hsts() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_to_section("public", &format!("onion_address = \"{ONION}\""));
    let server = deployment.start();
    assert!(server.public.starts_with("http://"), "{}", server.public);
    let client = client();

    // Through the onion service (Host: the onion address): no Onion-Location, no HSTS.
    let response = client
        .get(format!("{}/", server.public))
        .header("host", ONION)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "onion-location"), None);
    assert_eq!(header(&response, "strict-transport-security"), None);

    // Under a clearnet name (an HTTPS proxy in front): Onion-Location, and still no HSTS,
    // which only tipbox's own TLS sends.
    let response = client
        .get(format!("{}/followup", server.public))
        .header("host", "tips.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&response, "onion-location"),
        Some(format!("http://{ONION}/followup").as_str())
    );
    assert_eq!(header(&response, "strict-transport-security"), None);

    // SIGHUP without TLS reloads nothing and ends nothing.
    server.hangup();
    wait_for_log(&deployment, "nothing to reload", 1);
    let response = client.get(&server.public).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(server.stop().success());
}

/// Runs `tipbox serve`, which must exit with an error within 30 s; returns its stderr.
fn serve_refuses(deployment: &Deployment) -> String {
    let mut child = deployment
        .serve_command()
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tipbox serve started although it should have refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "serve exited successfully: {stderr}");
    assert!(
        !stderr.contains("listener on"),
        "a listener came up: {stderr}"
    );
    stderr
}

/// `tipbox serve` with TLS on the listener `section`, its files holding `cert` and `key`
/// (`None`: the file does not exist). It must refuse to start: what it said.
fn refused_with_tls_files(section: &str, cert: Option<&str>, key: Option<&str>) -> String {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let files = TlsPaths::in_dir(&deployment, "server");
    for (path, contents) in [(&files.cert, cert), (&files.key, key)] {
        if let Some(contents) = contents {
            replace_file(path, contents);
        }
    }
    deployment.add_to_section(section, &files.toml());
    serve_refuses(&deployment)
}

/// `tipbox serve` with `lines` added to the listener `section`: it must refuse to start.
fn refused_with(section: &str, lines: &str) -> String {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_to_section(section, lines);
    serve_refuses(&deployment)
}

#[test]
fn serve_refuses_a_key_that_is_not_the_certificate_s() {
    let ca = Ca::new("tipbox test CA");
    let (cert, other) = (
        ca.server_cert("tipbox test server"),
        ca.server_cert("another"),
    );
    let stderr = refused_with_tls_files("public", Some(&cert.cert_pem), Some(&other.key_pem));
    assert!(
        stderr.contains("invalid configuration: public.tls_key (")
            && stderr.contains("is not the private key of the certificate in public.tls_cert"),
        "{stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY"), "key material in: {stderr}");
}

/// (On the analyst listener.)
#[test]
fn serve_refuses_a_certificate_file_without_a_certificate() {
    let cert = Ca::new("tipbox test CA").server_cert("tipbox test server");
    let stderr = refused_with_tls_files("analyst", Some(&cert.key_pem), Some(&cert.key_pem));
    assert!(
        stderr.contains("analyst.tls_cert (") && stderr.contains("holds no certificate"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_a_key_file_that_cannot_be_read() {
    let cert = Ca::new("tipbox test CA").server_cert("tipbox test server");
    let stderr = refused_with_tls_files("public", Some(&cert.cert_pem), None);
    assert!(
        stderr.contains("public.tls_key (") && stderr.contains("cannot be read"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_a_key_file_without_a_key() {
    let cert = Ca::new("tipbox test CA").server_cert("tipbox test server");
    let stderr = refused_with_tls_files("public", Some(&cert.cert_pem), Some(&cert.cert_pem));
    assert!(
        stderr.contains("public.tls_key (") && stderr.contains("holds no private key"),
        "{stderr}"
    );
}

/// Half a pair, and a malformed onion address: refused by configuration validation.
#[test]
fn serve_refuses_half_a_pair_and_a_malformed_onion_address() {
    let stderr = refused_with("public", "tls_cert = \"/nonexistent/cert.pem\"");
    assert!(
        stderr.contains("public.tls_key: must be set together with public.tls_cert"),
        "{stderr}"
    );
    let stderr = refused_with("public", "onion_address = \"http://example.onion/\"");
    assert!(stderr.contains("public.onion_address:"), "{stderr}");
}
