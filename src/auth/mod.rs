//! Analyst authentication: argon2id passwords, TOTP second factor, and accounts.
//!
//! Sign-in, sessions and CSRF on the analyst listener build on these.

pub mod password;
pub mod signin;
pub mod totp;

/// Analyst roles: `admin` manages analysts and keys, reads the audit trail and deletes tips;
/// `analyst` works the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Analyst,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "analyst" => Some(Role::Analyst),
            _ => None,
        }
    }
}

/// Usernames: short, plain, and safe to show anywhere (logs, audit trail, pages).
pub fn valid_username(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

/// The fewest characters of a password an analyst chooses. `analyst add` generates passwords of
/// 29 (125 random bits, `generate_password`); a chosen one is held to at least this, and to
/// `check_new_password`'s other rules, which generated passwords meet too.
pub const MIN_PASSWORD_CHARS: usize = 15;
/// The longest password taken, in bytes (argon2 hashes any length; this bounds the work a form
/// can ask for).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Whether `password` may become `username`'s password: at least `MIN_PASSWORD_CHARS`
/// characters, at most `MAX_PASSWORD_BYTES` bytes, no control characters (it must survive
/// being typed as one line, as `tipbox review login` reads it), no space at either end, and
/// not containing the user name (of four letters or more). `Err` says what to change.
pub fn check_new_password(password: &str, username: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "The new password is too short: use at least {MIN_PASSWORD_CHARS} characters (a few unrelated words make a good one)."
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "The new password is too long: at most {MAX_PASSWORD_BYTES} bytes."
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(
            "The new password has a control character (a line break or tab): it must be one line."
                .to_owned(),
        );
    }
    if password.trim() != password {
        return Err("The new password begins or ends with a space: leave those out.".to_owned());
    }
    // A name of two or three letters is part of too many words to refuse them all.
    if username.len() >= 4 && password.to_lowercase().contains(username) {
        return Err("The new password contains your user name: choose another.".to_owned());
    }
    Ok(())
}

/// A generated password: 25 characters from a 32-letter alphabet (125 bits), in groups of
/// five so that it can be read out and typed.
pub fn generate_password() -> zeroize::Zeroizing<String> {
    const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789-";
    let mut bytes = zeroize::Zeroizing::new([0u8; 25]);
    getrandom::fill(bytes.as_mut()).expect("the operating system's random source works");
    let mut out = zeroize::Zeroizing::new(String::with_capacity(29));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('.');
        }
        out.push(ALPHABET[(*b & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["alice", "bob-2", "c.d", "ab"] {
            assert!(valid_username(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Alice",
            "-x",
            "a b",
            "é",
            "x/../y",
            &"a".repeat(65),
        ] {
            assert!(!valid_username(bad), "{bad}");
        }
    }

    #[test]
    fn chosen_passwords_are_held_to_the_policy_that_generated_ones_meet() {
        for _ in 0..20 {
            assert_eq!(check_new_password(&generate_password(), "alice"), Ok(()));
        }
        assert_eq!(
            check_new_password("correct horse battery staple", "alice"),
            Ok(())
        );
        for bad in [
            "too short",
            " leading space here",
            "trailing space here ",
            "two\nlines of a password",
            "it holds Alice's own name",
            &"x".repeat(MAX_PASSWORD_BYTES + 1),
        ] {
            assert!(check_new_password(bad, "alice").is_err(), "{bad:?}");
        }
        assert_eq!(check_new_password("bananas are not my name", "ana"), Ok(()));
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), 29);
        assert_ne!(*a, *b);
    }
}
