//! tipbox: a secure, anonymous tip line. Sources submit tips over the web (Tor Browser with
//! JavaScript off is the design target); every submission is sealed with age to the reviewers'
//! public keys before it is stored, so the server never holds a key that can read a tip.
//!
//! The module map, top to bottom; data flows one way, request → seal → store:
//!
//! - `cli`: the commands. `app`: the composition root that builds and runs the server.
//! - `api`: the JSON shapes of `/api/v1`, shared by the server and the review client.
//! - `web`: the two listeners — `web::public` (sources) and `web::analyst` (the desk and
//!   `/api/v1`), which never import each other, over `web::shared`, `web::middleware` and
//!   `web::transport`.
//! - `intake`: a submission's life (stream, seal, one durable commit), notes and replies.
//!   `followup`: sources' in-memory sessions. `auth`: analysts' passwords, TOTP, sessions.
//!   `audit`: the hash-chained audit trail. `retention`, `export`, `onion`: operators' tools.
//! - `seal` (streaming age encryption), `keyring` (reviewer recipients), `rekey` (age headers
//!   re-wrapped), `commitment` (keyed commitments to items' plaintext, made at intake and
//!   checked by readers), `receipt` (sources' receipts), `secrets` (the server secret): crypto
//!   and keys, no I/O beyond the secret's file. `writings`: the sealed JSON of notes and replies;
//!   `report`: the sealed shape of a source's send (message and facts in one item).
//! - `store`: SQLite or PostgreSQL, one write transaction type over both.
//! - `config`, `i18n`, `site` (the operator's own texts on the public pages); and the bottom floor, used by everything: `clock` (time, rounded) and
//!   `ids` (random ids).
//! - `review`: the analyst's own client (login, pull, rekey), run on the analyst's machine;
//!   nothing on the server side uses it.

#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod commitment;
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
pub mod report;
pub mod retention;
pub mod review;
pub mod seal;
pub mod secrets;
pub mod site;
pub mod store;
pub mod web;
pub mod writings;
