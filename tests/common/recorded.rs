//! AWS answers written down in a file and served over HTTP on loopback, for what moto cannot
//! produce: Control Tower and organization trails, advanced selectors, delivery errors, stale
//! deliveries, a public bucket, refused reads. The host talks to it as to AWS (signed requests,
//! path-style S3), so its parsing of each answer is tested along with the plugin's verdict.
//!
//! An answer is `{"cloudtrail": "<action>", "match": "<text in the request body>", "body": …}`
//! or `{"s3": "<METHOD> /<bucket>/?<subresource>", "headers": {…}, "body": "…"}`, with an optional
//! `"status"` (default 200). The first answer that matches is given. A string `"${NOW-<secs>}"`
//! in a body becomes that many seconds before now, in AWS's epoch-seconds form. A request that
//! matches no answer gets a 500 and is kept in `unanswered`.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// A running server of recorded answers.
pub struct Recorded {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    unanswered: Arc<Mutex<Vec<String>>>,
}

impl Recorded {
    /// Serves `answers` (a JSON array) on the current tokio runtime.
    pub async fn start(answers: &Value) -> Recorded {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answers: Arc<Vec<Value>> = Arc::new(answers.as_array().expect("answers is an array").clone());
        let unanswered = Arc::new(Mutex::new(Vec::new()));
        let missed = unanswered.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(answer(sock, answers.clone(), missed.clone()));
            }
        });
        Recorded { url, unanswered }
    }

    /// The requests no answer matched: `<METHOD> <path>` or `<action> <body>`.
    pub fn unanswered(&self) -> Vec<String> {
        self.unanswered.lock().unwrap().clone()
    }
}

async fn answer(mut sock: TcpStream, answers: Arc<Vec<Value>>, unanswered: Arc<Mutex<Vec<String>>>) {
    let Some((head, body)) = read_request(&mut sock).await else {
        return;
    };
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let target = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("x-amz-target"))
        .map(|(_, v)| v.trim().rsplit('.').next().unwrap_or_default().to_owned());
    let found = answers.iter().find(|a| match &target {
        Some(action) => {
            a["cloudtrail"].as_str() == Some(action.as_str()) && a["match"].as_str().is_none_or(|m| body.contains(m))
        }
        None => a["s3"].as_str() == Some(&format!("{method} {path}")),
    });
    let response = match found {
        Some(a) => {
            let status = a["status"].as_u64().unwrap_or(200);
            let (content_type, text) = match &a["body"] {
                Value::String(s) if target.is_none() => ("application/xml", s.clone()),
                Value::Null => ("application/xml", String::new()),
                other if target.is_some() => ("application/x-amz-json-1.1", other.to_string()),
                other => ("application/json", other.to_string()),
            };
            let text = stamp(&text);
            let mut headers = String::new();
            if let Some(h) = a["headers"].as_object() {
                for (k, v) in h {
                    headers.push_str(&format!("{k}: {}\r\n", v.as_str().unwrap_or_default()));
                }
            }
            let shown = if method == "HEAD" { "" } else { text.as_str() };
            format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n{shown}",
                reason(status),
                text.len()
            )
        }
        None => {
            let what = match &target {
                Some(action) => format!("{action} {body}"),
                None => format!("{method} {path}"),
            };
            unanswered.lock().unwrap().push(what);
            let body = "{\"__type\":\"InternalFailure\",\"message\":\"no recorded answer\"}";
            format!(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
    };
    sock.write_all(response.as_bytes()).await.ok();
    sock.shutdown().await.ok();
}

/// `"${NOW-<secs>}"` → now minus `secs`, in epoch seconds with milliseconds.
fn stamp(text: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("\"${NOW-") {
        let Some(end) = rest[i..].find("}\"") else { break };
        let secs: i64 = rest[i + 7..i + end].parse().expect("${NOW-<secs>}");
        let at = now - secs * 1000;
        out.push_str(&rest[..i]);
        out.push_str(&format!("{}.{:03}", at / 1000, at % 1000));
        rest = &rest[i + end + 2..];
    }
    out.push_str(rest);
    out
}

fn reason(status: u64) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    }
}

/// One HTTP/1.1 request: its head and its body as text.
async fn read_request(sock: &mut TcpStream) -> Option<(String, String)> {
    let bytes = super::proxy::read_request(sock).await?;
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    Some((
        String::from_utf8_lossy(&bytes[..head_end]).into_owned(),
        String::from_utf8_lossy(&bytes[head_end..]).into_owned(),
    ))
}
