//! The local endpoint the engine's webhook steps call: HTTP/1.1 on 127.0.0.1, answering every
//! request `200 {}` at once, keeping connections alive, and counting what it served and how long
//! serving took.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The answer to every request.
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

/// What the endpoint served.
#[derive(Debug, Default)]
pub struct Served {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Nanoseconds from a request's complete arrival to its answer written, summed.
    pub nanos: AtomicU64,
}

/// A running endpoint.
pub struct Endpoint {
    /// Its URL for webhook steps.
    pub url: String,
    /// Its counters.
    pub served: Arc<Served>,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    /// Starts serving on a free port of 127.0.0.1.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the local endpoint")?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let served = Arc::new(Served::default());
        let counters = Arc::clone(&served);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&counters)));
            }
        });
        Ok(Self { url, served, task })
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where a request's head ends and how long its body is, once the head is complete.
pub fn parse_head(buffer: &[u8]) -> Option<(usize, usize, bool)> {
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
    let mut length = 0;
    let mut chunked = false;
    for line in head.lines() {
        if let Some(value) = line.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        } else if let Some(value) = line.strip_prefix("transfer-encoding:") {
            chunked = value.contains("chunked");
        }
    }
    Some((end, length, chunked))
}

/// Serves one connection's requests until the client closes it.
async fn serve(mut stream: TcpStream, served: Arc<Served>) {
    let _ = stream.set_nodelay(true);
    let mut buffer: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        // Read until a whole request (head and body) is in the buffer.
        let consumed = loop {
            if let Some((head_end, length, chunked)) = parse_head(&buffer) {
                if chunked {
                    if let Some(at) = buffer[head_end..]
                        .windows(5)
                        .position(|w| w == b"0\r\n\r\n")
                    {
                        break head_end + at + 5;
                    }
                } else if buffer.len() >= head_end + length {
                    break head_end + length;
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        };
        let arrived = Instant::now();
        buffer.drain(..consumed);
        if stream.write_all(RESPONSE).await.is_err() {
            return;
        }
        served.requests.fetch_add(1, Ordering::Relaxed);
        served.nanos.fetch_add(
            u64::try_from(arrived.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_give_the_body_length() {
        let request = b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_head(request), Some((request.len() - 5, 5, false)));
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_head(chunked), Some((chunked.len(), 0, true)));
    }

    #[tokio::test]
    async fn every_request_on_a_connection_is_answered() {
        let endpoint = Endpoint::start().await.unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        for _ in 0..3 {
            let response = client
                .post(&endpoint.url)
                .json(&serde_json::json!({"order": 1}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.text().await.unwrap(), "{}");
        }
        assert_eq!(endpoint.served.requests.load(Ordering::Relaxed), 3);
        assert!(endpoint.served.nanos.load(Ordering::Relaxed) > 0);
    }
}
