//! A receipt means the tip is durably committed, and nothing less: receipts survive SIGKILL,
//! SQLite runs in WAL mode, and when storage fails — the server can no longer write its SQLite
//! file, or its PostgreSQL connection is cut in the middle of a commit — a source that got no
//! receipt is told nothing was stored, and every source that got one has its tip stored.
//!
//! (Whether each commit is fsynced cannot be seen from outside: the page cache survives
//! SIGKILL. The store's own unit tests check the per-connection settings.)

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{
    Backend, Deployment, Server, decrypt, items_of, on_both_backends, open_report,
    postgres_base_url, random_bytes, receipt_from, stored_item, submit, submit_message, tip_form,
};

/// What the page of a submission that could not be stored says.
const NOT_STORED: &str = "your report was not stored";
const NOTHING_STORED: &str = "Nothing from this attempt was stored";

/// A receipt means the tip is on disk: SIGKILL right after it is shown loses nothing.
async fn receipts_survive_sigkill(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    let alice = deployment.add_reviewer("alice");
    let server = deployment.start();
    let submissions = (0..20).map(|i| {
        let form = Form::new().text("message", format!("tip number {i}")).part(
            "attachment",
            Part::bytes(random_bytes(1_100_000 + i)).file_name("f.bin"),
        );
        submit(&server, form, "en")
    });
    for (status, page) in futures_util::future::join_all(submissions).await {
        assert_eq!(status, StatusCode::OK);
        receipt_from(&page);
    }
    server.kill9();
    let _server = deployment.start();
    let (out, manifest) = deployment.export();
    let reports = items_of(&manifest, "report");
    assert_eq!(reports.len(), 20);
    let texts: BTreeSet<String> = reports
        .iter()
        .map(|m| {
            let sealed = std::fs::read(out.join(m["file"].as_str().unwrap())).unwrap();
            open_report(&decrypt(&alice, &sealed)).0
        })
        .collect();
    let expected: BTreeSet<String> = (0..20).map(|i| format!("tip number {i}")).collect();
    assert_eq!(texts, expected);
    assert_eq!(items_of(&manifest, "attachment").len(), 20);
}
on_both_backends!(receipts_survive_sigkill);

/// The SQLite file says it is in WAL mode (bytes 18 and 19 of its header are 2, "WAL"; the
/// journal mode is the one setting SQLite keeps in the file), once serve has opened it.
#[tokio::test(flavor = "multi_thread")]
async fn the_sqlite_database_is_in_wal_mode() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    submit_message(&server, "a tip").await;
    let header = std::fs::read(deployment.data_dir().join("tipbox.db")).unwrap();
    assert!(header.starts_with(b"SQLite format 3\0"));
    assert_eq!(
        (header[18], header[19]),
        (2, 2),
        "file format write/read version 2 means WAL"
    );
    assert!(deployment.data_dir().join("tipbox.db-wal").exists());
}

/// The messages stored, decrypted with `identity`.
async fn stored_messages(
    deployment: &Deployment,
    identity: &age::x25519::Identity,
) -> BTreeSet<String> {
    let store = deployment.store().await;
    let mut messages = BTreeSet::new();
    for item in store.list_items().await.unwrap() {
        if item.kind == "report" {
            let sealed = stored_item(&store, &item.item_id).await;
            messages.insert(open_report(&decrypt(identity, &sealed)).0);
        }
    }
    store.close().await;
    messages
}

/// The page says the submission was not stored, in so many words, and shows no receipt.
fn assert_told_nothing_was_stored(what: &str, status: StatusCode, page: &str) {
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{what}: {page}");
    assert!(page.contains(NOT_STORED), "{what}: {page}");
    assert!(page.contains(NOTHING_STORED), "{what}: {page}");
    assert!(!page.contains("id=\"receipt\""), "{what}: {page}");
}

/// The server's process can no longer write a byte to any file (its file-size limit is 0, as
/// when a disk is full): a text tip and one with an attachment are refused with the page that
/// says nothing was stored, and after a restart without the limit nothing of them is there.
#[tokio::test(flavor = "multi_thread")]
async fn when_the_database_cannot_be_written_nothing_is_acknowledged() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let alice = deployment.add_reviewer("alice");
    // SIGXFSZ ignored before exec (an ignored signal stays ignored across exec): a write past
    // the limit fails with EFBIG instead of killing the server.
    let server = Server::spawn(
        &deployment,
        deployment.serve_command_via(&["sh", "-c", "trap '' XFSZ; exec \"$0\" \"$@\""]),
    );
    submit_message(&server, "stored before the disk filled").await;
    let before = deployment.counts().await;
    set_file_size_limit(server.pid(), Some(0));

    let (status, page) = submit(&server, tip_form("a text tip", &[]), "en").await;
    assert_told_nothing_was_stored("a text tip", status, &page);
    let form = tip_form("with a file", &[("a.bin", random_bytes(1_200_000))]);
    let (status, page) = submit(&server, form, "en").await;
    assert_told_nothing_was_stored("a tip with an attachment", status, &page);
    assert_eq!(
        deployment.counts().await,
        before,
        "seen while the server runs"
    );

    // Restarted without the limit: only the first tip is there, and intake works again.
    drop(server);
    let server = deployment.start();
    assert_eq!(deployment.counts().await, before, "seen after a restart");
    assert_eq!(
        stored_messages(&deployment, &alice).await,
        BTreeSet::from(["stored before the disk filled".to_owned()])
    );
    submit_message(&server, "after the restart").await;
}

/// The same, and then the limit is lifted again: the running server takes tips again without a
/// restart, and those are stored.
#[tokio::test(flavor = "multi_thread")]
async fn once_the_database_can_be_written_again_intake_resumes() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let alice = deployment.add_reviewer("alice");
    let server = Server::spawn(
        &deployment,
        deployment.serve_command_via(&["sh", "-c", "trap '' XFSZ; exec \"$0\" \"$@\""]),
    );
    set_file_size_limit(server.pid(), Some(0));
    let (status, page) = submit(&server, tip_form("refused", &[]), "en").await;
    assert_told_nothing_was_stored("while full", status, &page);
    set_file_size_limit(server.pid(), None);
    submit_message(&server, "accepted").await;
    let form = tip_form(
        "accepted with a file",
        &[("a.bin", random_bytes(1_200_000))],
    );
    let (status, page) = submit(&server, form, "en").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        stored_messages(&deployment, &alice).await,
        BTreeSet::from(["accepted".to_owned(), "accepted with a file".to_owned()])
    );
}

/// Sets the soft limit on the size of files process `pid` may write (`None`: no limit).
fn set_file_size_limit(pid: u32, bytes: Option<u64>) {
    use rustix::process::{Pid, Resource, Rlimit, prlimit};
    let pid = Pid::from_raw(pid as i32).expect("a process id");
    prlimit(
        Some(pid),
        Resource::Fsize,
        Rlimit {
            current: bytes,
            maximum: None,
        },
    )
    .expect("prlimit on the server (the tests run as its owner)");
}

/// Where a relayed connection is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// PostgreSQL never sees the `COMMIT`: the transaction is rolled back.
    BeforeCommit,
    /// PostgreSQL commits, and the connection is cut before tipbox hears so.
    AfterCommit,
}

/// A TCP relay on 127.0.0.1 between tipbox and the test PostgreSQL that follows the frontend
/// protocol and, when armed, cuts the next connection that sends `COMMIT`.
struct PgRelay {
    port: u16,
    armed: Arc<Mutex<Option<Cut>>>,
    cuts: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
}

/// `host:port` of the test PostgreSQL.
fn postgres_address() -> String {
    let url = reqwest::Url::parse(&postgres_base_url()).expect("TIPBOX_TEST_POSTGRES_URL is a URL");
    let host = url
        .host_str()
        .expect("a host in the PostgreSQL URL")
        .to_owned();
    assert!(
        host == "127.0.0.1" || host == "localhost",
        "the tests only talk to loopback"
    );
    format!("{host}:{}", url.port().unwrap_or(5432))
}

impl PgRelay {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(Mutex::new(None));
        let cuts = Arc::new(AtomicUsize::new(0));
        let upstream = postgres_address();
        let accept = {
            let (armed, cuts) = (Arc::clone(&armed), Arc::clone(&cuts));
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(postgres) = TcpStream::connect(&upstream).await else {
                        continue;
                    };
                    let (armed, cuts) = (Arc::clone(&armed), Arc::clone(&cuts));
                    tokio::spawn(relay(client, postgres, armed, cuts));
                }
            })
        };
        Self {
            port,
            armed,
            cuts,
            accept,
        }
    }

    /// The deployment's database URL, through this relay (and without TLS, so that the relay
    /// can read the protocol).
    fn url_for(&self, deployment: &Deployment) -> String {
        let direct = postgres_address();
        assert!(deployment.database_url.contains(&direct));
        let relayed = deployment
            .database_url
            .replace(&direct, &format!("127.0.0.1:{}", self.port));
        if relayed.contains("sslmode=") {
            relayed
                .replace("sslmode=prefer", "sslmode=disable")
                .replace("sslmode=require", "sslmode=disable")
        } else {
            format!("{relayed}&sslmode=disable")
        }
    }

    /// Cuts the next connection that sends `COMMIT`.
    fn arm(&self, cut: Cut) {
        *self.armed.lock().unwrap() = Some(cut);
    }

    fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for PgRelay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The length of the first whole message in `buffer` (`typed`: a type byte, then a length
/// that counts itself; else a startup-phase message, a length and no type), if it is all there.
fn whole_message(buffer: &[u8], typed: bool) -> Option<usize> {
    let at = usize::from(typed);
    let length = buffer.get(at..at + 4)?;
    let length = at + u32::from_be_bytes(length.try_into().unwrap()) as usize;
    (buffer.len() >= length).then_some(length)
}

/// Relays one connection, message by message from tipbox and byte by byte back, until either
/// side closes or the connection is cut at a `COMMIT`.
async fn relay(
    mut client: TcpStream,
    mut postgres: TcpStream,
    armed: Arc<Mutex<Option<Cut>>>,
    cuts: Arc<AtomicUsize>,
) {
    /// SSLRequest and GSSENCRequest: the startup phase goes on after them.
    const ENCRYPTION_REQUESTS: [u32; 2] = [80877103, 80877104];
    let mut from_client = Vec::new();
    let mut from_postgres = Vec::new();
    let mut typed = false;
    loop {
        tokio::select! {
            read = client.read_buf(&mut from_client) => {
                if !matches!(read, Ok(n) if n > 0) {
                    return;
                }
                while let Some(length) = whole_message(&from_client, typed) {
                    let message: Vec<u8> = from_client.drain(..length).collect();
                    if !typed {
                        let code = u32::from_be_bytes(message[4..8].try_into().unwrap());
                        typed = !ENCRYPTION_REQUESTS.contains(&code);
                    } else if message[0] == b'Q' && message[5..].eq_ignore_ascii_case(b"COMMIT\0") {
                        let cut = armed.lock().unwrap().take();
                        match cut {
                            None => {}
                            Some(Cut::BeforeCommit) => {
                                cuts.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                            Some(Cut::AfterCommit) => {
                                // Pass the COMMIT on, wait for PostgreSQL to be ready for the next
                                // query (the commit is done), and tell tipbox nothing.
                                if postgres.write_all(&message).await.is_ok() {
                                    read_until_ready(&mut postgres).await;
                                }
                                cuts.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                        }
                    }
                    if postgres.write_all(&message).await.is_err() {
                        return;
                    }
                }
            }
            read = postgres.read_buf(&mut from_postgres) => {
                if !matches!(read, Ok(n) if n > 0) {
                    return;
                }
                if client.write_all(&from_postgres).await.is_err() {
                    return;
                }
                from_postgres.clear();
            }
        }
    }
}

/// Reads PostgreSQL's answer up to its ReadyForQuery message.
async fn read_until_ready(postgres: &mut TcpStream) {
    let mut answer = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        while let Some(length) = whole_message(&answer, true) {
            let message: Vec<u8> = answer.drain(..length).collect();
            assert_ne!(message[0], b'E', "PostgreSQL refused the COMMIT");
            if message[0] == b'Z' {
                return;
            }
        }
        match tokio::time::timeout_at(deadline, postgres.read_buf(&mut answer)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => panic!("PostgreSQL did not answer the COMMIT"),
        }
    }
}

/// tipbox on PostgreSQL through the relay; rounds of concurrent text tips, each round with
/// the relay's next COMMIT cut. Returns, per message sent, whether a receipt was shown, and
/// the messages stored (read on a direct connection).
async fn submissions_across_cut_commits(cut: Cut) -> (BTreeMap<String, bool>, BTreeSet<String>) {
    let deployment = Deployment::new(Backend::Postgres, "");
    let alice = deployment.add_reviewer("alice");
    let relay = PgRelay::start().await;
    deployment.edit_config(&deployment.database_url, &relay.url_for(&deployment));
    let server = deployment.start();
    submit_message(&server, "before any cut").await;

    let mut receipts = BTreeMap::from([("before any cut".to_owned(), true)]);
    for round in 0..3 {
        relay.arm(cut);
        let messages: Vec<String> = (0..6).map(|n| format!("round {round} tip {n}")).collect();
        let answers = futures_util::future::join_all(
            messages
                .iter()
                .map(|m| submit(&server, tip_form(m, &[]), "en")),
        )
        .await;
        assert_eq!(relay.cuts(), round + 1, "round {round}: a COMMIT was cut");
        for (message, (status, page)) in messages.into_iter().zip(answers) {
            let receipt = status == StatusCode::OK && page.contains("id=\"receipt\"");
            if !receipt {
                assert_told_nothing_was_stored(&message, status, &page);
            }
            receipts.insert(message, receipt);
        }
    }
    // The server goes on once its connection is back.
    submit_message(&server, "after the cuts").await;
    receipts.insert("after the cuts".to_owned(), true);
    drop(server);
    let stored = stored_messages(&deployment, &alice).await;
    (receipts, stored)
}

/// Every source was told the truth: a receipt exactly for the tips that are stored.
fn assert_receipts_match_what_is_stored(
    receipts: &BTreeMap<String, bool>,
    stored: &BTreeSet<String>,
) {
    for (message, shown) in receipts {
        assert_eq!(
            stored.contains(message),
            *shown,
            "{message}: receipt shown {shown}"
        );
    }
    assert_eq!(stored.len(), receipts.values().filter(|s| **s).count());
}

/// The connection is cut as tipbox sends COMMIT (which never reaches PostgreSQL): every source
/// is told the truth. In practice all get receipts: a batch whose multi-row commit failed is
/// written again tip by tip on a fresh connection.
#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_connection_cut_before_the_commit_is_written_again() {
    let (receipts, stored) = submissions_across_cut_commits(Cut::BeforeCommit).await;
    assert_receipts_match_what_is_stored(&receipts, &stored);
}

/// The connection is cut after PostgreSQL committed, before tipbox hears of it: tipbox looks
/// the batch's tips up on another connection, finds them stored, and shows their receipts —
/// never a receipt for a tip that is not there, and no source told "not stored" whose tip is.
#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_connection_cut_after_the_commit_is_found_stored() {
    let (receipts, stored) = submissions_across_cut_commits(Cut::AfterCommit).await;
    assert_receipts_match_what_is_stored(&receipts, &stored);
}
