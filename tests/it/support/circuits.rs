//! Speaking to a `client_address = "tor-circuit"` listener as tor does: a relay on loopback
//! that starts every connection it forwards with tor's PROXY line for one circuit id, so that
//! ordinary HTTP clients (reqwest, a browser) can be "on a circuit".

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::library::tor_header;

/// One circuit: connections to `url` reach the server as circuit `id`. Stops when dropped.
pub struct Circuit {
    pub url: String,
    relay: JoinHandle<()>,
}

impl Circuit {
    /// A relay for circuit `id` in front of the public listener at `public` (`http://host:port`).
    pub async fn open(public: &str, id: u32) -> Circuit {
        let server = public.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let relay = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&server).await else {
                        return;
                    };
                    if outbound.write_all(tor_header(id).as_bytes()).await.is_err() {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Circuit { url, relay }
    }
}

impl Drop for Circuit {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

/// Connects to the public listener at `public` as circuit `id`, with tor's line already sent.
pub async fn connect_as(public: &str, id: u32) -> TcpStream {
    let mut stream = TcpStream::connect(public.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(tor_header(id).as_bytes()).await.unwrap();
    stream
}
