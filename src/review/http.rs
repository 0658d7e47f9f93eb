//! The API client: one HTTP client (through a proxy such as Tor if asked), the session's bearer
//! token on every request, waits when the server's request budget says so, and the server's
//! refusals turned into errors.

use std::path::Path;

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;

use super::session::SavedSession;
use crate::api;

/// The HTTP client: no redirects followed, and `proxy` (e.g. `socks5h://127.0.0.1:9050` to
/// reach an onion service through Tor) for every request.
pub(super) fn client(proxy: Option<&str>) -> anyhow::Result<reqwest::Client> {
    // One process-wide TLS provider (ring, as elsewhere in tipbox); a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("tipbox-review/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(proxy) = proxy {
        builder = builder.proxy(reqwest::Proxy::all(proxy).context("--proxy")?);
    }
    Ok(builder.build()?)
}

/// The analyst API, as the saved session reaches it.
pub(super) struct Api {
    pub client: reqwest::Client,
    session: SavedSession,
}

impl Api {
    /// The API of the session `review login` saved.
    pub fn from_saved_session() -> anyhow::Result<Self> {
        let session = SavedSession::load()?;
        Ok(Self {
            client: client(session.proxy.as_deref())?,
            session,
        })
    }

    /// Sends a request; an ended session is an error, any other answer is returned as it is.
    /// Over the server's request budget (429), it waits as `Retry-After` says and sends again,
    /// a few times, when the request can be repeated (a streamed upload cannot).
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let request = request.bearer_auth(&self.session.token);
        let mut attempts = 0;
        let response = loop {
            let again = request.try_clone();
            let response = match again {
                Some(copy) => copy.send().await?,
                None => break request.send().await?,
            };
            attempts += 1;
            if response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS || attempts >= 8 {
                break response;
            }
            tokio::time::sleep(retry_after(&response)).await;
        };
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            bail!("the session has ended; run `tipbox review login` again");
        }
        Ok(response)
    }

    /// The analyst the session is for.
    pub fn username(&self) -> &str {
        &self.session.username
    }

    /// The server, as `review login` was given it.
    pub fn server(&self) -> &str {
        &self.session.server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.session.server)
    }

    /// `METHOD path` with `body` as JSON; the answer as it is (see `send`).
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<reqwest::Response> {
        let request = self
            .client
            .request(method, self.url(path))
            .header("content-type", "application/json")
            .body(serde_json::to_string(body)?);
        self.send(request).await
    }

    /// `GET path`, which must succeed.
    pub async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let response = self.send(self.client.get(self.url(path))).await?;
        if !response.status().is_success() {
            bail!("{path}: HTTP {}", response.status());
        }
        Ok(response)
    }

    /// Streams the sealed item `id` (an age file: ciphertext only) into a file at `path`
    /// readable by this user only, which it returns.
    pub async fn download_sealed(&self, id: &str, path: &Path) -> anyhow::Result<std::fs::File> {
        use futures_util::StreamExt;
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        let mut stream = self
            .get(&format!("/api/v1/items/{id}/sealed"))
            .await?
            .bytes_stream();
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?)?;
        }
        Ok(file)
    }

    /// `GET path`, which must succeed with a JSON answer of type `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        Ok(serde_json::from_str(&self.get(path).await?.text().await?)?)
    }
}

/// How long a 429 answer asks to wait (`Retry-After` in seconds), between 1 and 60 seconds.
fn retry_after(response: &reqwest::Response) -> std::time::Duration {
    let seconds = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    std::time::Duration::from_secs(seconds.clamp(1, 60))
}

/// A refusal, with the server's own explanation.
pub(super) async fn refused(response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let why = serde_json::from_str::<api::Error>(&text)
        .map(|e| e.error)
        .unwrap_or_default();
    anyhow::anyhow!("refused (HTTP {status}): {why}")
}
