//! tipbox: a secure, anonymous tip line. Sources submit tips over the web (Tor Browser with
//! JavaScript off is the design target); every submission is sealed with age to the reviewers'
//! public keys before it is stored, so the server never holds a key that can read a tip.
//!
//! Module map: `cli` (commands) → `web` (listeners, pages) → `intake` (a submission's life)
//! → `seal` (age) + `keyring` (reviewer keys) + `receipt` (source receipts) → `store` (SQLite
//! or PostgreSQL). `config`, `secrets` and `i18n` serve them all. `review` is the analyst's own
//! client; `rekey` re-seals stored items when reviewer keys are retired or revoked.

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod export;
pub mod followup;
pub mod i18n;
pub mod ids;
pub mod intake;
pub mod keyring;
pub mod onion;
pub mod receipt;
pub mod rekey;
pub mod retention;
pub mod review;
pub mod seal;
pub mod secrets;
pub mod store;
pub mod web;
