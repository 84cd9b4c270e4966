//! The one way a service error becomes an HTTP answer.
//!
//! Each service keeps its own error enum (its codes are its contract) and implements
//! [`ApiError`] for it; [`api_error_response`] renders any of them the same way: the
//! JSON error body, `Retry-After` when the client should come back, `WWW-Authenticate`
//! on 401, and the cause logged (never sent) for server faults.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::error_response;

/// An error a request can end with.
pub trait ApiError: std::error::Error {
    /// The HTTP status.
    fn status(&self) -> StatusCode;
    /// The stable code clients branch on (`invite_used_up`, `busy`, ...).
    fn code(&self) -> &'static str;
    /// When the client may try again (`Retry-After`), if the refusal is temporary.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
    /// Whether the cause is a fault worth a log line. Default: every 5xx.
    fn is_fault(&self) -> bool {
        self.status().is_server_error()
    }
}

/// The response for `e`. The message is the error's `Display`, which must hold no
/// internals; the `Debug` form (the cause) goes to the log for faults only.
pub fn api_error_response<E: ApiError + std::fmt::Debug>(e: &E) -> Response {
    let status = e.status();
    if e.is_fault() {
        tracing::error!(error = ?e, "request failed");
    }
    let mut res = error_response(status, e.code(), e.to_string());
    if let Some(wait) = e.retry_after() {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}

/// An HTTP client for calls between services: every call bounded by `timeout`, and
/// connecting by the shorter of it and two seconds.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(2)))
        .build()
        // Only a broken TLS set-up fails here; the default client has the same roots.
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum E {
        #[error("slow down")]
        Limited,
        #[error("who are you")]
        Anonymous,
        #[error("internal error")]
        Broken,
    }

    impl ApiError for E {
        fn status(&self) -> StatusCode {
            match self {
                E::Limited => StatusCode::TOO_MANY_REQUESTS,
                E::Anonymous => StatusCode::UNAUTHORIZED,
                E::Broken => StatusCode::INTERNAL_SERVER_ERROR,
            }
        }
        fn code(&self) -> &'static str {
            match self {
                E::Limited => "rate_limited",
                E::Anonymous => "unauthenticated",
                E::Broken => "internal",
            }
        }
        fn retry_after(&self) -> Option<Duration> {
            matches!(self, E::Limited).then(|| Duration::from_millis(1500))
        }
    }

    #[test]
    fn every_error_renders_the_same_way() {
        let res = api_error_response(&E::Limited);
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2", "rounded up");
        let res = api_error_response(&E::Anonymous);
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert!(res.headers().get(header::RETRY_AFTER).is_none());
        let res = api_error_response(&E::Broken);
        assert_eq!(res.status(), 500);
        assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
    }
}
