//! Signing in and out of the API: `/api/v1/session`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// `POST /api/v1/session`: a sign-in with the password and a TOTP code.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct SignIn {
    #[schemars(with = "String")]
    pub password: Zeroizing<String>,
    /// 6 digits; each code works once.
    #[schemars(with = "String")]
    pub totp: Zeroizing<String>,
    pub username: String,
}

/// The answer to a sign-in: the bearer token for `Authorization: Bearer …`.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct NewSession {
    /// Unix time; the session also ends when idle.
    pub expires_at: i64,
    /// 256 random bits; only its hash is stored.
    #[schemars(with = "String")]
    pub token: Zeroizing<String>,
}

/// `GET /api/v1/session`: who the token belongs to, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Session {
    /// Unix time.
    pub expires_at: i64,
    pub role: Role,
    pub username: String,
}

/// What an analyst may do: admins also manage reviewer keys and read the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Analyst,
}

/// `GET /api/v1/analysts`: the analysts a tip can be assigned to (accounts not disabled), by
/// user name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AnalystList {
    pub analysts: Vec<String>,
}
