//! A small fault-injecting HTTP proxy in front of moto: answers some requests itself (an error,
//! a reset, no answer at all) and forwards the rest. One request per connection, loopback only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does instead of forwarding a request.
pub enum Fault {
    /// Answers with these bytes.
    Answer(Vec<u8>),
    /// Closes the connection without an answer.
    Reset,
    /// Never answers (a stuck request).
    Hang,
    /// Forwards, then passes on the answer's head and only half its body, and closes (a
    /// download cut off midway).
    Truncate,
    /// Forwards, then passes on the answer's head and half its body, and sends nothing more
    /// while keeping the connection open (a download that stalls).
    Stall,
    /// Forwards after this long (a slow answer).
    Delay(std::time::Duration),
    /// Forwards, and passes on the answer when it is a refusal (4xx: moto checked the caller's
    /// permissions); answers with these bytes otherwise (a call moto authorizes but does not
    /// implement).
    AnswerUnlessRefused(Vec<u8>),
}

/// Chooses a fault (or none: forward) for the `n`th request (from 0), given its head.
pub type Injection = fn(u64, &str) -> Option<Fault>;

/// A running proxy.
pub struct Proxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Requests seen.
    pub seen: Arc<AtomicU64>,
    /// Requests answered with a fault.
    pub faults: Arc<AtomicU64>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on the current tokio runtime.
    pub async fn start(upstream: &str, inject: Injection) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let seen = Arc::new(AtomicU64::new(0));
        let faults = Arc::new(AtomicU64::new(0));
        tokio::spawn(serve(listener, upstream, seen.clone(), faults.clone(), inject));
        Proxy { url, seen, faults }
    }
}

/// An S3-style XML error answer.
pub fn error_response(status: &str, code: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one HTTP/1.1 request (head and Content-Length body); `None` at EOF.
pub async fn read_request(sock: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

async fn serve(
    listener: TcpListener,
    upstream: String,
    seen: Arc<AtomicU64>,
    faults: Arc<AtomicU64>,
    inject: Injection,
) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let upstream = upstream.clone();
        let seen = seen.clone();
        let faults = faults.clone();
        tokio::spawn(async move {
            let Some(request) = read_request(&mut sock).await else {
                return;
            };
            let text = String::from_utf8_lossy(&request).into_owned();
            let head_end = text.find("\r\n\r\n").map(|i| i + 2).unwrap_or(0);
            let mut truncate = false;
            let mut stall = false;
            let mut unless_refused = None;
            let n = seen.fetch_add(1, Ordering::Relaxed);
            match inject(n, &text[..head_end]) {
                Some(Fault::Answer(resp)) => {
                    faults.fetch_add(1, Ordering::Relaxed);
                    sock.write_all(&resp).await.ok();
                    return;
                }
                Some(Fault::Reset) => {
                    faults.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Fault::Hang) => {
                    faults.fetch_add(1, Ordering::Relaxed);
                    // Holds the connection open until the client gives up on it.
                    let mut sink = [0u8; 1024];
                    while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
                    return;
                }
                Some(Fault::Truncate) => {
                    faults.fetch_add(1, Ordering::Relaxed);
                    truncate = true;
                }
                Some(Fault::Stall) => {
                    faults.fetch_add(1, Ordering::Relaxed);
                    truncate = true;
                    stall = true;
                }
                Some(Fault::Delay(d)) => {
                    faults.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(d).await;
                }
                Some(Fault::AnswerUnlessRefused(resp)) => unless_refused = Some(resp),
                None => {}
            }
            let Ok(mut up) = TcpStream::connect(&upstream).await else {
                return;
            };
            let mut forwarded = Vec::new();
            for line in text[..head_end].split("\r\n").filter(|l| !l.is_empty()) {
                if !line.to_ascii_lowercase().starts_with("connection:") {
                    forwarded.extend_from_slice(line.as_bytes());
                    forwarded.extend_from_slice(b"\r\n");
                }
            }
            forwarded.extend_from_slice(b"Connection: close\r\n\r\n");
            forwarded.extend_from_slice(&request[head_end + 2..]);
            if up.write_all(&forwarded).await.is_err() {
                return;
            }
            let mut response = Vec::new();
            if up.read_to_end(&mut response).await.is_err() {
                return;
            }
            if let Some(answer) = unless_refused {
                if !response.starts_with(b"HTTP/1.1 4") && !response.starts_with(b"HTTP/1.0 4") {
                    faults.fetch_add(1, Ordering::Relaxed);
                    response = answer;
                }
            }
            if truncate {
                let body_at = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |i| i + 4);
                response.truncate(body_at + (response.len() - body_at) / 2);
            }
            sock.write_all(&response).await.ok();
            if stall {
                let mut sink = [0u8; 1024];
                while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
            }
        });
    }
}
