//! The web page: the files of `ui/`, embedded in the binary and served on the same
//! origin as the APIs and the room WebSockets.
//!
//! Owns: which paths are pages (every page path answers `index.html`; the page's
//! own router reads the URL), the asset URLs (`/assets/VERSION/...`, where VERSION
//! hashes every embedded file, so an asset URL names one content and may be cached
//! forever while `index.html` revalidates with its `ETag`), gzip (each file is
//! compressed once, at start-up) and the browser security headers every response
//! of a Rendezvous origin carries ([`security_headers`]).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::{Path, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest as _, Sha256};

#[derive(rust_embed::Embed)]
#[folder = "../ui/"]
#[include = "*.html"]
#[include = "*.js"]
#[include = "*.css"]
#[include = "*.svg"]
#[include = "*.webmanifest"]
#[exclude = "node_modules/*"]
#[exclude = "tests/*"]
struct Ui;

/// The paths the page's router knows. Each answers `index.html`.
pub const PAGE_PATHS: [&str; 7] = [
    "/",
    "/register",
    "/login",
    "/rooms",
    "/rooms/new",
    "/join/{code}",
    "/r/{id}",
];

/// The policy of every response. No inline script or style anywhere; the page talks
/// only to its own origin (`'self'` covers `ws:`/`wss:` to the same host); nothing
/// may frame it. Camera and microphone are for the video rooms.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
    connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// One file, ready to send.
struct Asset {
    // `Bytes`: a response shares the file, it does not copy it.
    body: Bytes,
    /// Only when it is smaller than `body`.
    gzip: Option<Bytes>,
    content_type: HeaderValue,
    etag: HeaderValue,
}

impl Asset {
    /// `mime` as embedding found it (`mime_guess`, from the file name).
    fn new(mime: &str, body: Vec<u8>) -> Self {
        let hash = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex(&hash[..12]));
        let gzip = gzip(&body)
            .filter(|z| z.len() < body.len())
            .map(Bytes::from);
        Self {
            body: Bytes::from(body),
            gzip,
            content_type: HeaderValue::from_str(&with_charset(mime))
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
        }
    }

    /// The response for a request with `headers`: `304` when its `ETag` matches,
    /// gzip when the client takes it.
    fn respond(&self, headers: &HeaderMap, cache_control: &'static str) -> Response {
        let mut res = if etag_matches(headers, &self.etag) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            match (&self.gzip, accepts_gzip(headers)) {
                (Some(z), true) => {
                    let mut res = z.clone().into_response();
                    res.headers_mut()
                        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    res
                }
                _ => self.body.clone().into_response(),
            }
        };
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, self.content_type.clone());
        h.insert(header::ETAG, self.etag.clone());
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        res
    }
}

/// Every embedded file, and `index.html` with its asset URLs pointing at this
/// version.
struct Assets {
    version: String,
    index: Asset,
    files: HashMap<String, Asset>,
}

impl Assets {
    fn load() -> Self {
        let mut names: Vec<_> = Ui::iter().map(|n| n.into_owned()).collect();
        names.sort();
        let mut all = Sha256::new();
        let mut raw = Vec::with_capacity(names.len());
        for name in names {
            if let Some(file) = Ui::get(&name) {
                all.update(name.as_bytes());
                all.update(file.metadata.sha256_hash());
                let mime = file.metadata.mimetype().to_owned();
                raw.push((name, mime, file.data.into_owned()));
            }
        }
        let version = hex(&all.finalize()[..6]);
        let mut index = None;
        let mut files = HashMap::new();
        for (name, mime, data) in raw {
            if name == "index.html" {
                let html = String::from_utf8_lossy(&data)
                    .replace("\"/assets/", &format!("\"/assets/{version}/"));
                index = Some(Asset::new(&mime, html.into_bytes()));
            } else {
                files.insert(name, Asset::new(&mime, data));
            }
        }
        let index = index.unwrap_or_else(|| {
            Asset::new(
                "text/html",
                b"<!doctype html><title>Rendezvous</title><p>The page was not built in.".to_vec(),
            )
        });
        Self {
            version,
            index,
            files,
        }
    }

    fn get() -> &'static Self {
        static ASSETS: OnceLock<Assets> = OnceLock::new();
        ASSETS.get_or_init(Self::load)
    }
}

/// The version in asset URLs: a hash of every embedded file.
pub fn version() -> &'static str {
    &Assets::get().version
}

/// The page's routes: every page path, and `/assets/VERSION/*path`.
pub fn routes() -> Router {
    let mut router = Router::new();
    for path in PAGE_PATHS {
        router = router.route(path, get(index));
    }
    router.route("/assets/{version}/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    // Revalidate every time: a new version must reach people at once.
    Assets::get().index.respond(&headers, "no-cache")
}

async fn asset(Path((version, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let assets = Assets::get();
    let Some(file) = assets.files.get(&path) else {
        return not_found();
    };
    // Another version's URL (a page from a replica being rolled out) still gets the
    // file, but not for keeps: its content may differ from what that URL promised.
    let cache = if version == assets.version {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    file.respond(&headers, cache)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":{"code":"not_found","message":"no such file"}}"#,
    )
        .into_response()
}

/// Middleware: the browser security headers, on every response that does not set
/// its own.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // Invite codes are in page URLs: no referrer may carry them elsewhere.
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            header::HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(
                "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()",
            ),
        ),
    ];
    for (name, value) in set {
        h.entry(name).or_insert(value);
    }
    res
}

fn etag_matches(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// Whether `Accept-Encoding` takes gzip (and does not refuse it with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

/// Text needs its charset; `mime_guess` gives the bare type.
fn with_charset(mime: &str) -> String {
    if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
