//! Request spans that name the matched route, never the URI: paths and queries carry
//! secrets (`/api/join/CODE`, `?token=`) that must not reach logs at any level.

use axum::extract::MatchedPath;
use axum::http::Request;

/// The span of one request: method and route template (`/api/join/{code}`), or
/// `unmatched` for a path no route knows. Use with
/// `TraceLayer::new_for_http().make_span_with(request_span)`.
pub fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    tracing::debug_span!("request", method = %method_label(req.method()), route)
}

/// What [`trace_layer`] returns: tower-http's HTTP trace layer with our spans.
pub type RouteTraceLayer = tower_http::trace::TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    MakeSpan,
>;

/// How [`trace_layer`] makes a span.
pub type MakeSpan = fn(&Request<axum::body::Body>) -> tracing::Span;

/// A `TraceLayer` whose spans are [`request_span`]s.
pub fn trace_layer() -> RouteTraceLayer {
    tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span as MakeSpan)
}

/// A method as a bounded label: the standard methods by name, anything a client made
/// up as `other` (any token is valid HTTP), so metrics and logs cannot be flooded
/// with new values.
pub fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
