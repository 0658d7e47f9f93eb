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
    fn generated_passwords_are_long_and_differ() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), 29);
        assert_ne!(*a, *b);
    }
}
