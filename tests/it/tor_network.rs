//! Real Tor, end to end, offline: Debian's `tor` runs a private Tor test network on loopback
//! (one directory authority made with `tor-gencert`, five relays), tipbox's public listener is
//! published on it as an onion service with deploy/torrc's own settings (circuit ids exported
//! to tipbox, which runs with `client_address = "tor-circuit"` and the shipped budgets; the
//! proof-of-work defence and stream limits) and a tip with an attachment is submitted through
//! a client tor's SOCKS port while another client floods the onion over several circuits; the
//! analyst listener is a client-authorized onion service, reachable with the key from
//! `tipbox analyst onion-key` and refused without it.
//!
//! Safety rule for every tor this file starts: its torrc has `TestingTorNetwork 1` and a
//! private `DirAuthority` on 127.0.0.1 and `UseDefaultFallbackDirs 0` (so not even tor's
//! built-in fallback directories are ever contacted; `--list-fingerprint` also gets
//! `DisableNetwork 1`);
//! `TorNet::spawn` checks this before starting anything. No tor here can reach the public Tor
//! network. Every tor is killed when the test ends, also when it fails (`TorNet`'s `Drop`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::multipart::Form;

use super::tor::private_dir;
use crate::support::{
    Backend, Deployment, free_loopback_port as free_port, install_tls_provider, receipt_from,
    shipped_rate_limits,
};

/// Lines every node of the test network has.
fn common_torrc(dir: &Path, dir_authority: &str) -> String {
    format!(
        "TestingTorNetwork 1\n\
         {dir_authority}\n\
         UseDefaultFallbackDirs 0\n\
         DataDirectory {dir}\n\
         PidFile {dir}/tor.pid\n\
         Log notice file {dir}/notice.log\n\
         SafeLogging 1\n\
         ContactInfo test\n\
         Address 127.0.0.1\n\
         AssumeReachable 1\n\
         TestingDirAuthVoteGuard *\n\
         TestingDirAuthVoteHSDir *\n\
         TestingDirAuthVoteExit *\n\
         V3AuthNIntervalsValid 2\n\
         PathsNeededToBuildCircuits 0.67\n\
         ShutdownWaitLength 0\n\
         RunAsDaemon 0\n",
        dir = dir.display()
    )
}

/// The tor processes of one test network; all killed when dropped. On a failing test their
/// logs' tails are printed.
struct TorNet {
    base: PathBuf,
    nodes: Vec<(String, Child)>,
}

impl TorNet {
    fn node_dir(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// Writes `<base>/<name>/torrc` and starts `tor -f` on it.
    fn spawn(&mut self, name: &str, torrc: &str) {
        assert!(
            torrc.lines().any(|l| l == "TestingTorNetwork 1")
                && torrc.lines().any(|l| l == "UseDefaultFallbackDirs 0")
                && torrc
                    .lines()
                    .any(|l| l.starts_with("DirAuthority ") && l.contains(" 127.0.0.1:")),
            "refusing to start a tor outside the private test network:\n{torrc}"
        );
        let dir = private_dir(&self.node_dir(name));
        let file = dir.join("torrc");
        std::fs::write(&file, torrc).unwrap();
        let out = std::fs::File::create(dir.join("stdout.log")).unwrap();
        let child = Command::new("tor")
            .arg("-f")
            .arg(&file)
            .arg("--quiet")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("Debian's `tor` must be installed (scripts/test installs it)");
        self.nodes.push((name.to_owned(), child));
    }

    /// Kills one node (to start it again with the same data directory).
    fn stop(&mut self, name: &str) {
        let at = self.nodes.iter().position(|(n, _)| n == name).unwrap();
        let (_, mut child) = self.nodes.remove(at);
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Every node must still be running.
    fn assert_alive(&mut self) {
        for (name, child) in &mut self.nodes {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("tor node {name} exited: {status}");
            }
        }
    }

    fn log_tails(&self) -> String {
        let mut all = String::new();
        for (name, _) in &self.nodes {
            for log in ["stdout.log", "notice.log"] {
                let text =
                    std::fs::read_to_string(self.node_dir(name).join(log)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(15)..];
                all.push_str(&format!("--- {name}/{log} ---\n{}\n", tail.join("\n")));
            }
        }
        all
    }
}

impl Drop for TorNet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("tor logs (tails):\n{}", self.log_tails());
        }
        for (_, child) in &mut self.nodes {
            let _ = child.kill();
        }
        for (_, child) in &mut self.nodes {
            let _ = child.wait();
        }
    }
}

/// Makes the authority's keys and starts the authority and five relays; returns the
/// `DirAuthority` line for the other nodes.
fn start_network(net: &mut TorNet) -> String {
    let auth = private_dir(&net.node_dir("auth"));
    let keys = private_dir(&auth.join("keys"));
    let (or_port, dir_port) = (free_port(), free_port());
    let mut gencert = Command::new("tor-gencert")
        .arg("--create-identity-key")
        .args(["-m", "12"])
        .args(["-a", &format!("127.0.0.1:{dir_port}")])
        .arg("-i")
        .arg(keys.join("authority_identity_key"))
        .arg("-s")
        .arg(keys.join("authority_signing_key"))
        .arg("-c")
        .arg(keys.join("authority_certificate"))
        .arg("--passphrase-fd")
        .arg("0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tor-gencert (Debian package tor)");
    {
        use std::io::Write;
        gencert.stdin.take().unwrap().write_all(b"\n").unwrap();
    }
    let out = gencert.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tor-gencert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = std::fs::read_to_string(keys.join("authority_certificate")).unwrap();
    let v3ident = cert
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint "))
        .expect("fingerprint line in the authority certificate")
        .trim()
        .to_owned();

    let auth_lines = format!(
        "Nickname auth\n\
         AuthoritativeDirectory 1\n\
         V3AuthoritativeDirectory 1\n\
         ORPort 127.0.0.1:{or_port}\n\
         DirPort 127.0.0.1:{dir_port}\n\
         SocksPort 0\n\
         ExitPolicy reject *:*\n\
         TestingV3AuthInitialVotingInterval 10\n\
         TestingV3AuthInitialVoteDelay 2\n\
         TestingV3AuthInitialDistDelay 2\n\
         V3AuthVotingInterval 10\n\
         V3AuthVoteDelay 2\n\
         V3AuthDistDelay 2\n"
    );
    let dir_authority = |fingerprint: &str| {
        format!(
            "DirAuthority auth orport={or_port} no-v2 v3ident={v3ident} 127.0.0.1:{dir_port} {fingerprint}"
        )
    };
    // The relay fingerprint of the authority, before it runs (its identity key is made now);
    // with a placeholder DirAuthority and DisableNetwork: this tor connects nowhere.
    let placeholder = format!(
        "{}{auth_lines}",
        common_torrc(&auth, &dir_authority(&"0".repeat(40)))
    );
    std::fs::write(auth.join("torrc"), &placeholder).unwrap();
    let out = Command::new("tor")
        .arg("--list-fingerprint")
        .arg("-f")
        .arg(auth.join("torrc"))
        .args(["--DisableNetwork", "1", "--quiet"])
        .output()
        .expect("Debian's `tor` must be installed (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fingerprint: String = stdout
        .lines()
        .find_map(|l| l.strip_prefix("auth "))
        .unwrap_or_else(|| {
            panic!(
                "tor --list-fingerprint: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .split_whitespace()
        .collect();
    assert_eq!(fingerprint.len(), 40, "{stdout}");
    let dir_authority = dir_authority(&fingerprint);

    net.spawn(
        "auth",
        &format!("{}{auth_lines}", common_torrc(&auth, &dir_authority)),
    );
    for i in 1..=5 {
        let name = format!("relay{i}");
        let dir = net.node_dir(&name);
        net.spawn(
            &name,
            &format!(
                "{}Nickname {name}\nORPort 127.0.0.1:{}\nDirPort 127.0.0.1:{}\nSocksPort 0\n\
                 ExitRelay 0\nExitPolicy reject *:*\n",
                common_torrc(&dir, &dir_authority),
                free_port(),
                free_port()
            ),
        );
    }
    dir_authority
}

/// An HTTP client that goes through a tor's SOCKS port (names resolved by tor).
fn socks_client(socks_port: u16, timeout: Duration) -> reqwest::Client {
    socks_client_on(socks_port, "", timeout)
}

/// A client whose streams go on circuits of their own: tor isolates streams by SOCKS user name
/// (`IsolateSOCKSAuth`, on by default), so each distinct `circuit` name is another circuit.
fn socks_client_on(socks_port: u16, circuit: &str, timeout: Duration) -> reqwest::Client {
    install_tls_provider();
    let credentials = if circuit.is_empty() {
        String::new()
    } else {
        format!("{circuit}:x@")
    };
    reqwest::Client::builder()
        .proxy(
            reqwest::Proxy::all(format!("socks5h://{credentials}127.0.0.1:{socks_port}")).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap()
}

/// GETs `url` until it answers 200 or `limit` has passed; the body on success.
async fn poll_until_ok(
    net: &mut TorNet,
    client: &reqwest::Client,
    url: &str,
    limit: Duration,
) -> String {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        net.assert_alive();
        match client.get(url).send().await {
            Ok(response) if response.status() == StatusCode::OK => {
                eprintln!("{url} answered after {:?}", start.elapsed());
                return response.text().await.unwrap();
            }
            Ok(response) => last = format!("status {}", response.status()),
            Err(error) => last = format!("{error:?}"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    panic!("{url} did not answer 200 within {limit:?}; last: {last}");
}

/// The reply code of a SOCKS5 CONNECT to `host:port` through tor (0 = connected; tor's
/// `ExtendedErrors` codes for onion services are 0xF0–0xF7).
async fn socks5_connect_reply(socks_port: u16, host: &str, port: u16) -> u8 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", socks_port))
            .await
            .unwrap();
        stream.write_all(&[5, 1, 0]).await.unwrap();
        let mut choice = [0u8; 2];
        stream.read_exact(&mut choice).await.unwrap();
        assert_eq!(choice, [5, 0], "tor's SOCKS port accepts no-auth");
        let mut request = vec![5, 1, 0, 3, u8::try_from(host.len()).unwrap()];
        request.extend_from_slice(host.as_bytes());
        request.extend_from_slice(&port.to_be_bytes());
        stream.write_all(&request).await.unwrap();
        let mut reply = [0u8; 2];
        stream.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply[0], 5);
        reply[1]
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .expect("tor answers the SOCKS request within 60 s")
}

fn wait_for_file(path: &Path, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.trim().is_empty()
        {
            return text.trim().to_owned();
        }
        assert!(
            start.elapsed() < limit,
            "{} not written in time",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// tipbox served over a private Tor network: the service tor publishes the public listener and
/// the client-authorized analyst listener; one client tor has ana's key, one has none.
/// (Fields drop in order: the tors, then the server, then the deployment's directory.)
struct OverTor {
    net: TorNet,
    _server: crate::support::Server,
    deployment: Deployment,
    public_onion: String,
    analyst_onion: String,
    socks_plain: u16,
    socks_ana: u16,
    socks_flood: u16,
}

/// The public onion service's own lines from deploy/torrc (circuit ids, proof of work, stream
/// limits), without its directory and port, which the test sets; the proof-of-work line only
/// if this tor has the module (deploy/torrc says to remove it otherwise).
fn shipped_public_service_lines() -> String {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/torrc")).unwrap();
    let (public, _) = shipped
        .split_once("HiddenServiceDir /var/lib/tor/tipbox-analyst/")
        .unwrap();
    let modules = Command::new("tor").arg("--list-modules").output().unwrap();
    let has_pow = String::from_utf8_lossy(&modules.stdout).contains("pow: yes");
    let lines: String = public
        .lines()
        .filter(|l| l.starts_with("HiddenService"))
        .filter(|l| !l.starts_with("HiddenServiceDir") && !l.starts_with("HiddenServicePort"))
        .filter(|l| has_pow || !l.starts_with("HiddenServicePoW"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        lines.contains("HiddenServiceExportCircuitID haproxy\n"),
        "setup: deploy/torrc exports circuit ids: {lines}"
    );
    lines
}

async fn over_tor() -> OverTor {
    let deployment = Deployment::new(Backend::Sqlite, &shipped_rate_limits("tor-circuit"));
    deployment.add_reviewer("alice");
    deployment.tipbox_ok(&["analyst", "add", "ana"]);
    let server = deployment.start();

    let mut net = TorNet {
        base: private_dir(&deployment.path().join("tor")),
        nodes: Vec::new(),
    };
    let dir_authority = start_network(&mut net);

    // The service tor, as deploy/torrc has it: the public listener with its circuit ids, proof
    // of work and stream limits, and the analyst listener with client authorization.
    let service = net.node_dir("service");
    let public_dir = service.join("hs-public");
    let analyst_dir = service.join("hs-analyst");
    let service_torrc = format!(
        "{}SocksPort 0\n\
         HiddenServiceDir {}\nHiddenServicePort 80 127.0.0.1:{}\n{}\
         HiddenServiceDir {}\nHiddenServicePort 80 127.0.0.1:{}\n",
        common_torrc(&service, &dir_authority),
        public_dir.display(),
        port_of(&server.public),
        shipped_public_service_lines(),
        analyst_dir.display(),
        port_of(&server.analyst),
    );
    // First run: tor makes the services' keys and writes their addresses.
    net.spawn("service", &service_torrc);
    let public_onion = wait_for_file(&public_dir.join("hostname"), Duration::from_secs(30));
    let analyst_onion = wait_for_file(&analyst_dir.join("hostname"), Duration::from_secs(30));
    net.stop("service");
    // The analyst's key; tor enforces client authorization from its next start.
    let private_line = deployment.tipbox_ok(&[
        "analyst",
        "onion-key",
        "ana",
        "--service-dir",
        analyst_dir.to_str().unwrap(),
    ]);
    let private_line = private_line.trim();
    assert!(
        private_line.starts_with(&format!(
            "{}:descriptor:x25519:",
            analyst_onion.trim_end_matches(".onion")
        )),
        "setup, the analyst's onion key: {private_line}"
    );
    assert!(
        analyst_dir.join("authorized_clients/ana.auth").exists(),
        "setup: tor's authorized_clients/ana.auth is written"
    );
    net.spawn("service", &service_torrc);

    // Two clients: one with ana's key, one without.
    let socks_plain = free_port();
    let plain = net.node_dir("client-plain");
    net.spawn(
        "client-plain",
        &format!(
            "{}SocksPort 127.0.0.1:{socks_plain} ExtendedErrors\nORPort 0\n",
            common_torrc(&plain, &dir_authority)
        ),
    );
    // The flooder's own tor.
    let socks_flood = free_port();
    let flood = net.node_dir("client-flood");
    net.spawn(
        "client-flood",
        &format!(
            "{}SocksPort 127.0.0.1:{socks_flood}\nORPort 0\n",
            common_torrc(&flood, &dir_authority)
        ),
    );
    let socks_ana = free_port();
    let ana = net.node_dir("client-ana");
    let auth_dir = private_dir(&ana.join("onion-auth"));
    std::fs::write(
        auth_dir.join("tipbox.auth_private"),
        format!("{private_line}\n"),
    )
    .unwrap();
    net.spawn(
        "client-ana",
        &format!(
            "{}SocksPort 127.0.0.1:{socks_ana}\nORPort 0\nClientOnionAuthDir {}\n",
            common_torrc(&ana, &dir_authority),
            auth_dir.display()
        ),
    );
    OverTor {
        net,
        _server: server,
        deployment,
        public_onion,
        analyst_onion,
        socks_plain,
        socks_ana,
        socks_flood,
    }
}

/// Junk from one client over `circuits` circuits of its own, as fast as each answer comes,
/// until `stop`: page loads, empty sign-in forms and small junk tips. The statuses it got, each
/// with whether it answered a tip.
async fn flood(
    socks_port: u16,
    onion: String,
    circuits: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<(bool, StatusCode)> {
    let mut floods = Vec::new();
    for circuit in 0..circuits {
        let client = socks_client_on(
            socks_port,
            &format!("flood{circuit}"),
            Duration::from_secs(60),
        );
        let onion = onion.clone();
        let stop = stop.clone();
        floods.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut n = 0usize;
            while !*stop.borrow() {
                let request = match n % 3 {
                    0 => client.get(format!("http://{onion}/")),
                    1 => client
                        .post(format!("http://{onion}/followup"))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(""),
                    _ => client
                        .post(format!("http://{onion}/submit"))
                        .multipart(Form::new().text("message", format!("junk {circuit}/{n}"))),
                };
                let tip = n % 3 == 2;
                n += 1;
                match request.send().await {
                    Ok(response) => statuses.push((tip, response.status())),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for flood in floods {
        statuses.extend(flood.await.unwrap());
    }
    statuses
}

/// Step 1: a source opens the public onion and submits a tip with an attachment through tor,
/// and gets its receipt, while another client floods the onion over several circuits and runs
/// into its own circuits' budgets.
async fn a_source_submits_through_the_public_onion_under_a_flood(tor: &mut OverTor) {
    const STEP: &str = "step 1, a tip through the public onion under a flood";
    let source = socks_client(tor.socks_plain, Duration::from_secs(60));
    let home = poll_until_ok(
        &mut tor.net,
        &source,
        &format!("http://{}/", tor.public_onion),
        Duration::from_secs(240),
    )
    .await;
    assert!(!home.is_empty(), "{STEP}: the landing page");
    let (stop_flood, stopped) = tokio::sync::watch::channel(false);
    let flooding = tokio::spawn(flood(tor.socks_flood, tor.public_onion.clone(), 4, stopped));
    // Let the flood run into its budgets first.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let message = "Submitted over a private Tor network, through an onion service.";
    let attachment = vec![0x5au8; 100_000];
    let response = source
        .post(format!("http://{}/submit?lang=en", tor.public_onion))
        .multipart(Form::new().text("message", message).part(
            "attachment",
            reqwest::multipart::Part::bytes(attachment).file_name("photo.jpg"),
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{STEP}: the tip goes through tor: {e}"));
    let status = response.status();
    let page = response.text().await.unwrap();
    stop_flood.send(true).unwrap();
    let flooded = flooding.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{STEP}: {page}");
    let receipt = receipt_from(&page);
    assert_eq!(receipt.split(' ').count(), 12, "{STEP}: {receipt}");
    let limited = flooded
        .iter()
        .filter(|(_, s)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let junk_tips = flooded
        .iter()
        .filter(|(tip, s)| *tip && *s == StatusCode::OK)
        .count();
    eprintln!(
        "{STEP}: the flood sent {} requests, {limited} refused over budget",
        flooded.len()
    );
    assert!(
        limited > 0,
        "{STEP}: the flooder's circuits ran into their budgets: {flooded:?}"
    );
    // The source's tip and the junk tips the flood got receipts for; nothing else.
    assert_eq!(
        tor.deployment.counts().await.tips,
        1 + junk_tips as i64,
        "{STEP}: stored"
    );
}

/// Step 2: ana's tor reaches the analyst onion with her key.
async fn the_analyst_onion_answers_the_client_with_the_key(tor: &mut OverTor) {
    let analyst_client = socks_client(tor.socks_ana, Duration::from_secs(60));
    let health = poll_until_ok(
        &mut tor.net,
        &analyst_client,
        &format!("http://{}/health", tor.analyst_onion),
        Duration::from_secs(120),
    )
    .await;
    assert!(
        health.contains("\"ok\""),
        "step 2, the analyst onion with the key: {health}"
    );
}

/// Step 3: without the key the descriptor is published (ana just used it) but cannot be read:
/// every attempt is refused by tor with SOCKS5 extended error 0xF4, "onion service missing
/// client authorization"; none reaches tipbox.
async fn without_the_key_the_analyst_onion_is_refused(tor: &mut OverTor) {
    let refused_since = Instant::now();
    let mut attempts = 0;
    while refused_since.elapsed() < Duration::from_secs(30) {
        tor.net.assert_alive();
        let reply = socks5_connect_reply(tor.socks_plain, &tor.analyst_onion, 80).await;
        assert_eq!(
            reply, 0xF4,
            "step 3, the analyst onion without the key: a client without the key must be \
             refused for missing client authorization (SOCKS5 reply {reply:#04x})"
        );
        attempts += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(attempts >= 2, "step 3: {attempts} attempts");
}

/// Step 4: the public onion still answers that same client: the refusal is the missing key.
async fn the_public_onion_still_answers_the_client_without_the_key(tor: &mut OverTor) {
    let source = socks_client(tor.socks_plain, Duration::from_secs(60));
    let home = poll_until_ok(
        &mut tor.net,
        &source,
        &format!("http://{}/", tor.public_onion),
        Duration::from_secs(60),
    )
    .await;
    assert!(
        !home.is_empty(),
        "step 4, the public onion for the same client"
    );
}

/// Building a private Tor network takes about a minute: one network, four named steps. (Run
/// as `a_private_tor_network_carries_tips_and_analysts` from main.rs.)
pub async fn tips_and_analysts_over_a_private_tor_network() {
    let started = Instant::now();
    let mut tor = over_tor().await;
    a_source_submits_through_the_public_onion_under_a_flood(&mut tor).await;
    the_analyst_onion_answers_the_client_with_the_key(&mut tor).await;
    without_the_key_the_analyst_onion_is_refused(&mut tor).await;
    the_public_onion_still_answers_the_client_without_the_key(&mut tor).await;
    drop(tor);
    eprintln!("tor network test took {:?}", started.elapsed());
}
