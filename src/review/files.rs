//! Names for what `review pull` writes: a name taken from the sealed facts (the source chose
//! it) made safe to create on the analyst's machine.

use std::path::{Path, PathBuf};

/// A name from the sealed facts, made safe to create inside `dir`: one path component, no
/// control characters, never `.`/`..`, never hidden, never starting with `-` (so that a
/// command an analyst runs on it, `file -- …` forgotten, cannot take it for an option), and
/// never an existing file.
pub fn safe_file_name(dir: &Path, wanted: &str) -> PathBuf {
    let name = safe_name(wanted);
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 16 => {
            (stem.to_owned(), format!(".{ext}"))
        }
        _ => (name.clone(), String::new()),
    };
    let mut candidate = dir.join(&name);
    let mut n = 2;
    while candidate.exists() {
        candidate = dir.join(format!("{stem} ({n}){extension}"));
        n += 1;
    }
    candidate
}

/// A name from the sealed facts made safe as one file name (see `safe_file_name`), without
/// looking at any directory: for the local desk's downloads.
pub fn safe_name(wanted: &str) -> String {
    let last = wanted.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String = crate::keyring::printable(last)
        .trim()
        .trim_start_matches(|c: char| c == '.' || c == '-' || c.is_whitespace())
        .to_owned();
    if name.is_empty() {
        name = "attachment".to_owned();
    }
    while name.len() > 200 {
        name.pop();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        for (wanted, expected) in [
            ("../../x", "x"),
            ("/etc/passwd", "passwd"),
            ("C:\\Windows\\evil.exe", "evil.exe"),
            ("a\0b.txt", "ab.txt"),
            ("..", "attachment"),
            (".bashrc", "bashrc"),
            ("", "attachment"),
            ("photo.jpg", "photo.jpg"),
            ("invoice\u{202E}fdp.sh", "invoicefdp.sh"),
            ("-rf", "rf"),
            ("--help.txt", "help.txt"),
            ("-.- x.pdf", "x.pdf"),
            ("-", "attachment"),
            ("a-b.txt", "a-b.txt"),
        ] {
            let path = safe_file_name(dir.path(), wanted);
            assert_eq!(path.parent().unwrap(), dir.path(), "{wanted}");
            assert_eq!(
                path.file_name().unwrap().to_str().unwrap(),
                expected,
                "{wanted:?}"
            );
        }
        std::fs::write(dir.path().join("photo.jpg"), b"x").unwrap();
        assert_eq!(
            safe_file_name(dir.path(), "photo.jpg").file_name().unwrap(),
            "photo (2).jpg"
        );
    }
}
