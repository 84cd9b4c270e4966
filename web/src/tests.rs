use super::*;
use axum::body::Body;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
    let app = routes().layer(axum::middleware::from_fn(security_headers));
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
}

async fn body(res: Response) -> Vec<u8> {
    res.into_body().collect().await.unwrap().to_bytes().to_vec()
}

#[tokio::test]
async fn every_page_path_serves_index_html_that_revalidates() {
    for path in [
        "/",
        "/login",
        "/register",
        "/rooms",
        "/rooms/new",
        "/join/abc",
        "/r/xyz",
    ] {
        let res = get(path, &[]).await;
        assert_eq!(res.status(), 200, "{path}");
        let h = res.headers();
        assert_eq!(h["content-type"], "text/html; charset=utf-8", "{path}");
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        assert!(h.contains_key("etag"));
        let html = String::from_utf8(body(res).await).unwrap();
        assert!(html.contains(&format!("/assets/{}/", version())), "{html}");
    }
}

#[tokio::test]
async fn a_matching_etag_gets_304_with_no_body() {
    let res = get("/", &[]).await;
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let res = get("/rooms", &[("if-none-match", &etag)]).await;
    assert_eq!(res.status(), 304);
    assert!(body(res).await.is_empty());
    let res = get("/rooms", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn versioned_assets_are_immutable_and_gzipped_on_request() {
    let path = format!("/assets/{}/app.js", version());
    let plain = get(&path, &[]).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(
        plain.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        plain.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = body(plain).await;

    let zipped = get(&path, &[("accept-encoding", "br, gzip;q=0.8")]).await;
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_eq!(zipped.headers()["vary"], "Accept-Encoding");
    let zipped = body(zipped).await;
    assert!(zipped.len() < plain.len());
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&zipped[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, plain);

    let refused = get(&path, &[("accept-encoding", "gzip;q=0")]).await;
    assert!(refused.headers().get("content-encoding").is_none());

    let css = get(&format!("/assets/{}/app.css", version()), &[]).await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}

#[tokio::test]
async fn another_versions_asset_url_is_served_but_not_cached_for_keeps() {
    let res = get("/assets/0000/app.js", &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-cache");
}

#[tokio::test]
async fn unknown_assets_and_test_files_are_not_served() {
    for path in [
        "/assets/v/nope.js",
        "/assets/v/package.json",
        "/assets/v/tests/chat.test.mjs",
        "/assets/v/../Cargo.toml",
        "/assets/v/node_modules/axe-core/axe.js",
    ] {
        let res = get(path, &[]).await;
        assert_eq!(res.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn every_response_carries_the_browser_security_headers() {
    let res = get("/join/CODE", &[]).await;
    let h = res.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"));
    assert!(csp.contains("connect-src 'self'"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    let res = get("/assets/v/missing.js", &[]).await;
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
}

#[test]
fn index_html_has_no_inline_script_style_or_handler() {
    let html = String::from_utf8(Assets::get().index.body.to_vec()).unwrap();
    assert!(!html.contains("<style"), "inline <style>");
    assert!(!html.contains(" style="), "inline style attribute");
    for tag in html.split("<script").skip(1) {
        let open = tag.split('>').next().unwrap_or("");
        assert!(open.contains(" src="), "inline <script{open}>");
    }
    // `onclick=` and friends: an attribute starting with `on` inside a tag.
    for word in html.split([' ', '\n', '\t']) {
        let name = word.split('=').next().unwrap_or("");
        let handler = word.contains('=')
            && name.len() > 2
            && name.starts_with("on")
            && name.chars().all(|c| c.is_ascii_lowercase());
        assert!(!handler, "inline handler {word}");
    }
}
