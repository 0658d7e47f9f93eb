//! The two listeners: public (sources) and analyst (the desk and `/api/v1`).
//!
//! They are separate routers with separate state types, bound to separate sockets, so the
//! analyst side can sit behind its own client-authorized onion service or VPN and is never
//! reachable through the public one. The rooms:
//!
//! - `public/`: landing, submission, receipt, a source's follow-up (state: `PublicState`).
//! - `analyst/`: the desk pages and the JSON API (state: `AnalystState`).
//! - `shared/`: what both render: pages, the language of a request, cookies.
//! - `middleware/`: security headers, request logging, request budgets.
//! - `transport/`: the serve loop with its deadlines, TLS, watched upload bodies.
//!
//! `public` and `analyst` never import each other: what both need lives in the other three.

pub mod analyst;
pub mod middleware;
pub mod public;
pub mod shared;
pub mod transport;

pub use analyst::AnalystState;
pub use public::PublicState;
