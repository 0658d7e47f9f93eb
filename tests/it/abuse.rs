//! Hostile clients on the public listener: slow senders, endless part headers, oversized
//! declarations. Each gets a clear answer, holds nothing for long, and leaves nothing stored.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Backend, Deployment, Server, client};

async fn connect(server: &Server) -> TcpStream {
    let addr = server.public.trim_start_matches("http://");
    TcpStream::connect(addr).await.unwrap()
}

/// Reads a whole HTTP/1.1 response (the server closes or the body ends); returns status + text.
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

const HEAD: &str = "POST /submit?lang=en HTTP/1.1\r\nHost: 127.0.0.1\r\n\
     Content-Type: multipart/form-data; boundary=BOUNDARY\r\nConnection: close\r\n";

/// A client that trickles its upload is cut off once the grace period is over, and the slot
/// it held goes to a genuine source.
#[tokio::test(flavor = "multi_thread")]
async fn slow_senders_are_cut_off_and_do_not_block_sources() {
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[limits]\nmax_concurrent_submissions = 1\nmin_upload_bytes_per_second = 50000\nupload_rate_window_seconds = 2\n",
    );
    deployment.add_reviewer("alice");
    let server = deployment.start();

    let mut slow = connect(&server).await;
    slow.write_all(format!("{HEAD}Content-Length: 1000000\r\n\r\n").as_bytes())
        .await
        .unwrap();
    slow.write_all(b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\n")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        let started = Instant::now();
        // A byte every 300 ms: far below the minimum rate, never idle long enough to time out.
        while started.elapsed() < Duration::from_secs(20) {
            if slow.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        read_response(&mut slow).await
    });
    // Meanwhile a genuine source waits for the only slot, and gets it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let response = client()
        .post(format!("{}/submit", server.public))
        .multipart(reqwest::multipart::Form::new().text("message", "a genuine tip"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let (status, page) = trickle.await.unwrap();
    assert_eq!(status, 408, "{page}");
    assert!(page.contains("too slow"), "{page}");
    assert_eq!(deployment.counts().await.tips, 1);
}

/// A part header that never ends is refused once it passes the budget, not buffered forever.
#[tokio::test(flavor = "multi_thread")]
async fn endless_part_headers_are_refused() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let mut stream = connect(&server).await;
    stream
        .write_all(format!("{HEAD}Transfer-Encoding: chunked\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let send = |data: Vec<u8>| {
        let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
        framed.extend(data);
        framed.extend(b"\r\n");
        framed
    };
    let mut first =
        b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"message\"\r\nX-Pad: ".to_vec();
    first.extend(vec![b'a'; 64 * 1024]);
    stream.write_all(&send(first)).await.unwrap();
    let started = Instant::now();
    for _ in 0..64 {
        // 4 MiB of header in all: far past the budget. The server may stop reading early.
        if stream
            .write_all(&send(vec![b'a'; 64 * 1024]))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let (status, page) = read_response(&mut stream).await;
    assert_eq!(status, 400, "{page}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(deployment.counts().await.tips, 0);
}

/// An upload declared too large up front is answered at once; a client that waits for
/// `100 Continue` never has to send its body.
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_declaration_is_answered_without_the_body() {
    let deployment = Deployment::new(Backend::Sqlite, "[limits]\nmax_total_bytes = 1000000\n");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let mut stream = connect(&server).await;
    stream
        .write_all(
            format!("{HEAD}Content-Length: 5000000000\r\nExpect: 100-continue\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let (status, page) = read_response(&mut stream).await;
    assert_eq!(status, 413, "{page}");
    assert!(page.contains("the limit for one report"));
    assert!(
        !page.contains("100 Continue"),
        "the body was never asked for"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
