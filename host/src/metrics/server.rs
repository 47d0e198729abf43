//! The metrics and health endpoints: `/metrics` (OpenMetrics text, which Prometheus scrapes),
//! `/healthz` (the process is alive and serving), `/readyz` (the last poll succeeded recently
//! and no sink is failing).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

use super::Metrics;
use crate::clock::Clock;

/// When `/readyz` says ready.
#[derive(Clone)]
pub struct Readiness {
    /// The last good poll may be at most this old.
    pub max_age: Duration,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn handle(req: &Request<hyper::body::Incoming>, metrics: &Metrics, ready: &Readiness) -> Response<Full<Bytes>> {
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n".into());
    }
    match req.uri().path() {
        "/metrics" => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => {
            let now = ready.clock.now_ms();
            let mut problems = Vec::new();
            match metrics.last_poll_ms() {
                None => problems.push("no poll has succeeded yet".to_owned()),
                Some(t) if now - t > ready.max_age.as_millis() as i64 => problems.push(format!(
                    "the last good poll was {} s ago (more than {} s)",
                    (now - t) / 1000,
                    ready.max_age.as_secs()
                )),
                Some(_) => {}
            }
            let failing = metrics.failing_sinks();
            if !failing.is_empty() {
                problems.push(format!("failing sinks: {}", failing.join(", ")));
            }
            if problems.is_empty() {
                respond(StatusCode::OK, "text/plain", "ready\n".into())
            } else {
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    format!("not ready: {}\n", problems.join("; ")),
                )
            }
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

/// Binds `listen` and serves the endpoints until the runtime ends. Returns the bound address.
pub async fn serve(listen: SocketAddr, metrics: Arc<Metrics>, ready: Readiness) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (metrics, ready) = (metrics.clone(), ready.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let r = handle(&req, &metrics, &ready);
                    async move { Ok::<_, Infallible>(r) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(error = %e, "metrics endpoint: connection ended");
                }
            });
        }
    });
    Ok(bound)
}
