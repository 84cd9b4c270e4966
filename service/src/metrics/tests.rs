//! HTTP metrics over real sockets: method labels, and the separate metrics listener.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::method_label;
use axum::http::Method;

/// One raw HTTP/1.1 request (any method token); returns the status and the body.
async fn raw(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[test]
fn only_standard_methods_become_labels() {
    for m in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        assert_eq!(method_label(&Method::from_bytes(m.as_bytes()).unwrap()), m);
    }
    for m in ["FOOBAR", "TRACE", "CONNECT", "get", "PROPFIND"] {
        assert_eq!(
            method_label(&Method::from_bytes(m.as_bytes()).unwrap()),
            "other"
        );
    }
}

#[tokio::test]
async fn unknown_method_is_labelled_other() {
    let m = HttpMetrics::new("t");
    let app = m.track(Router::new().route("/x", get(|| async { "x" })));
    let addr = serve(app).await;
    let (status, _) = raw(addr, "FOOBAR", "/x").await;
    assert_eq!(status, 405);
    let text = m.render();
    assert!(
        text.contains(
            r#"rendezvous_t_http_requests_total{method="other",route="/x",status="405"} 1"#
        ),
        "{text}"
    );
    assert!(!text.contains("FOOBAR"), "{text}");
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_only() {
    let m = HttpMetrics::new("t");
    let public = serve(m.track(Router::new().route("/x", get(|| async { "x" })))).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_metrics(listener, m.clone(), async move {
        let _ = stopped.await;
    }));

    assert_eq!(raw(public, "GET", "/x").await.0, 200);
    assert_eq!(raw(public, "GET", "/healthz").await.0, 200);
    assert_eq!(raw(public, "GET", "/metrics").await.0, 404);
    let (status, body) = raw(metrics_addr, "GET", "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(
            r#"rendezvous_t_http_requests_total{method="GET",route="/x",status="200"} 1"#
        ),
        "{body}"
    );
    assert_eq!(raw(metrics_addr, "GET", "/other").await.0, 404);

    // The metrics server ends when told to.
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
