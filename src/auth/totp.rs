//! TOTP (RFC 6238: SHA-1, 30-second steps, 6 digits, ±1 step), with each accepted step
//! remembered so that a code is never accepted twice.
//!
//! The secret is stored sealed with a subkey of the server secret (XChaCha20-Poly1305), so a
//! copy of the database alone does not yield analysts' second factors; and sealed with the
//! account's username as associated data, so that someone who can write the database cannot
//! move a second factor they know (their own account's) onto another account: it no longer
//! opens there, and the sign-in fails like a wrong code.
//!
//! The username, not the numeric id: it is what an analyst signs in with and what the audit
//! trail names, it is known before the account's row exists, no command changes it, and a
//! database writer who renames their own row to a victim's name gains nothing (the secret was
//! sealed to the old name). Usernames are never reused: accounts are disabled, not deleted.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use totp_rs::{Builder, Secret, Totp};
use zeroize::Zeroizing;

use crate::secrets::ServerSecret;

pub const ISSUER: &str = "tipbox";
const SECRET_BYTES: usize = 20;
const SUBKEY_PURPOSE: &str = "totp secrets";

/// A new random TOTP secret (160 bits, as RFC 4226 recommends).
pub fn generate_secret() -> Zeroizing<Vec<u8>> {
    let mut secret = Zeroizing::new(vec![0u8; SECRET_BYTES]);
    getrandom::fill(&mut secret).expect("the operating system's random source works");
    secret
}

pub fn totp(secret: &[u8], account: &str) -> Totp {
    Builder::new()
        .with_secret(Secret::from(secret.to_vec()))
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .expect("a 160-bit secret with the RFC 6238 defaults is valid")
}

/// What an analyst needs to set up an authenticator app.
pub struct Enrolment {
    pub secret_base32: Zeroizing<String>,
    pub otpauth_uri: Zeroizing<String>,
}

pub fn enrolment(secret: &[u8], account: &str) -> Enrolment {
    let totp = totp(secret, account);
    Enrolment {
        secret_base32: Zeroizing::new(totp.secret().to_base32()),
        otpauth_uri: Zeroizing::new(totp.to_url().expect("issuer and account have no colon")),
    }
}

/// Sets the terminal's colours to light on dark for a QR code's lines, and back.
const LIGHT_ON_DARK: &str = "\x1b[97;40m";
const RESET_COLOURS: &str = "\x1b[0m";

impl Enrolment {
    /// The otpauth URI as a QR code for a terminal, for the analyst to scan with their
    /// authenticator app: two rows of modules per line (Unicode half blocks). The blocks are
    /// the light modules and the colours are set to white on black, so the code reads the same
    /// whatever the terminal's own colours (a block is drawn in the foreground colour).
    pub fn terminal_qr(&self) -> String {
        use qrcode::render::unicode::Dense1x2;
        let code = qrcode::QrCode::new(self.otpauth_uri.as_bytes())
            .expect("an otpauth URI is far below a QR code's capacity");
        let blocks = code
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build();
        blocks
            .lines()
            .map(|line| format!("{LIGHT_ON_DARK}{line}{RESET_COLOURS}\n"))
            .collect()
    }
}

/// Checks `code` at `now`; returns the step it matched if that step is newer than
/// `last_step` (the last one accepted for this account).
pub fn check(secret: &[u8], code: &str, now: u64, last_step: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let step = totp(secret, "check").check(&code, now)? as i64;
    (step > last_step).then_some(step)
}

fn cipher(server: &ServerSecret) -> XChaCha20Poly1305 {
    let key = server.subkey(SUBKEY_PURPOSE);
    XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key[..]))
}

/// The associated data that binds a sealed secret to its account.
fn account_binding(username: &str) -> Vec<u8> {
    format!("tipbox totp secret v2 of {username}").into_bytes()
}

/// Seals `account`'s TOTP secret for storage: a random 24-byte nonce followed by the
/// ciphertext, with the account name as associated data.
pub fn seal_secret(server: &ServerSecret, account: &str, secret: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).expect("the operating system's random source works");
    let aad = account_binding(account);
    let mut out = nonce.to_vec();
    out.extend(
        cipher(server)
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .expect("encryption of a short secret cannot fail"),
    );
    out
}

/// Opens `account`'s sealed TOTP secret; `None` if it was not sealed by this server secret for
/// this account.
pub fn open_secret(
    server: &ServerSecret,
    account: &str,
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    open_with(server, sealed, &account_binding(account))
}

fn open_with(server: &ServerSecret, sealed: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < 24 {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(24);
    cipher(server)
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// A secret sealed before secrets were bound to their account (without associated data),
/// sealed again for `account`; `None` if it is already bound, or does not open either way.
/// Only the one-time start-up pass (`app::bind_rows_stored_before_bindings`) calls this: after
/// it, an unbound secret on an account is one moved there, and must not be adopted.
pub fn reseal_unbound_secret(
    server: &ServerSecret,
    account: &str,
    sealed: &[u8],
) -> Option<Vec<u8>> {
    if open_secret(server, account, sealed).is_some() {
        return None;
    }
    let secret = open_with(server, sealed, b"")?;
    Some(seal_secret(server, account, &secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_work_once_per_step() {
        let secret = generate_secret();
        let now = 1_800_000_000;
        let code = totp(&secret, "alice").generate(now).to_string();
        let step = check(&secret, &code, now, 0).expect("valid code");
        assert_eq!(step, (now / 30) as i64);
        assert_eq!(check(&secret, &code, now, step), None, "replay refused");
        // ±1 step of clock skew.
        assert!(check(&secret, &code, now + 30, 0).is_some());
        assert!(check(&secret, &code, now + 90, 0).is_none());
        assert!(check(&secret, "000000x", now, 0).is_none());
    }

    #[test]
    fn sealed_secrets_open_only_with_the_server_secret_and_for_their_account() {
        let dir = tempfile::tempdir().unwrap();
        let server = ServerSecret::create(dir.path()).unwrap();
        let secret = generate_secret();
        let sealed = seal_secret(&server, "alice", &secret);
        assert_eq!(*open_secret(&server, "alice", &sealed).unwrap(), *secret);
        assert!(open_secret(&server, "mallory", &sealed).is_none());
        let other_dir = tempfile::tempdir().unwrap();
        let other = ServerSecret::create(other_dir.path()).unwrap();
        assert!(open_secret(&other, "alice", &sealed).is_none());
        assert!(
            reseal_unbound_secret(&server, "alice", &sealed).is_none(),
            "already bound"
        );
        let uri = enrolment(&secret, "alice").otpauth_uri;
        assert!(uri.starts_with("otpauth://totp/tipbox:alice?"), "{}", *uri);
    }

    /// What a QR code drawn by `terminal_qr` says, read back as a camera would see it on the
    /// screen: a drawn half block is a light module, anything else dark.
    fn scan(drawn: &str) -> String {
        const SCALE: usize = 4;
        let rows: Vec<Vec<bool>> = drawn
            .lines()
            .map(|line| {
                line.trim_start_matches(LIGHT_ON_DARK)
                    .trim_end_matches(RESET_COLOURS)
            })
            .flat_map(|line| {
                let halves = |top: bool| -> Vec<bool> {
                    line.chars()
                        .map(|c| match c {
                            '█' => true,
                            '▀' => top,
                            '▄' => !top,
                            ' ' => false,
                            other => panic!("not a half block: {other:?}"),
                        })
                        .collect()
                };
                [halves(true), halves(false)]
            })
            .collect();
        let (width, height) = (rows[0].len() * SCALE, rows.len() * SCALE);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            if rows[y / SCALE][x / SCALE] { 255 } else { 0 }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code");
        grids[0].decode().expect("the QR code decodes").1
    }

    #[test]
    fn the_terminal_qr_code_scans_as_the_otpauth_uri() {
        let enrolment = enrolment(&generate_secret(), "alice");
        let drawn = enrolment.terminal_qr();
        assert!(drawn.lines().all(|l| l.starts_with(LIGHT_ON_DARK)));
        assert_eq!(scan(&drawn), enrolment.otpauth_uri.as_str());
    }

    #[test]
    fn a_secret_sealed_without_its_account_is_resealed_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let server = ServerSecret::create(dir.path()).unwrap();
        let secret = generate_secret();
        let mut unbound = vec![7u8; 24];
        unbound.extend(
            cipher(&server)
                .encrypt(XNonce::from_slice(&unbound[..24]), &secret[..])
                .unwrap(),
        );
        assert!(open_secret(&server, "alice", &unbound).is_none());
        let bound = reseal_unbound_secret(&server, "alice", &unbound).unwrap();
        assert_eq!(*open_secret(&server, "alice", &bound).unwrap(), *secret);
        assert!(open_secret(&server, "bob", &bound).is_none());
        assert!(reseal_unbound_secret(&server, "alice", b"garbage").is_none());
    }
}
