//! Looking for what must not be stored or logged: in the files of the data directory (for
//! SQLite the database, its WAL and shared memory), in every value the database holds (the only
//! way into PostgreSQL, whose files are not ours to read), and in the server's log.

use std::path::{Path, PathBuf};

use super::deployment::{Backend, Deployment};

/// Every file below `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn assert_not_in_files(files: &[PathBuf], needles: &[&[u8]]) {
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        for needle in needles {
            assert!(
                !contains(&bytes, needle),
                "{} contains {}",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
}

/// None of `needles` is in the data directory's files or in any value in the database (as
/// text, or hex-encoded as blobs appear). The database must hold at least one tip, so that the
/// search looked at something.
pub async fn assert_not_stored(deployment: &Deployment, needles: &[&[u8]]) {
    let files = files_under(&deployment.data_dir());
    if deployment.backend == Backend::Sqlite {
        assert!(files.iter().any(|f| f.ends_with("tipbox.db")), "{files:?}");
    }
    assert_not_in_files(&files, needles);
    let tables = deployment.tables().await;
    assert!(
        tables.get("tips").is_some_and(|rows| !rows.is_empty()),
        "the database holds no tip to look through"
    );
    let rows: String = tables
        .values()
        .flatten()
        .map(|r| r.to_owned() + "\n")
        .collect();
    let rows = rows.to_lowercase();
    for needle in needles {
        let text = String::from_utf8_lossy(needle);
        assert!(
            !rows.contains(&text.to_lowercase()),
            "the database holds {text}"
        );
        assert!(
            !rows.contains(&hex::encode(needle)),
            "the database holds {text} (as bytes)"
        );
    }
}

/// None of `needles` is in the server's log.
pub fn assert_not_logged(deployment: &Deployment, needles: &[&[u8]]) {
    assert_not_in_files(std::slice::from_ref(&deployment.log_path), needles);
}

/// The only addresses the log names are its listeners' own (it never names a client).
pub fn log_names_no_client(deployment: &Deployment) -> bool {
    deployment
        .log()
        .lines()
        .filter(|l| l.contains("127.0.0.1:"))
        .all(|l| l.contains("listener on"))
}
