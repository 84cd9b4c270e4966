//! The users service's routes, and its OpenAPI document.

pub mod browser;
pub mod sessions;
pub mod users;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::Router;
use rendezvous_api::{ErrorBody, JwkSet};
use utoipa::OpenApi;

use crate::keyring::JWKS_MAX_AGE;
use crate::model::BrowserSession;
use crate::Ctx;

/// The public verifying keys of access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "keys",
    responses((status = 200, description = "Ed25519 keys (RFC 8037)", body = JwkSet)))]
pub async fn jwks(State(ctx): State<Ctx>) -> impl IntoResponse {
    (
        // Verifiers may cache this long: a new key is published `PUBLISH_AHEAD` (more
        // than this) before it signs anything.
        [(
            axum::http::header::CACHE_CONTROL,
            format!("public, max-age={}", JWKS_MAX_AGE.as_secs()),
        )],
        axum::Json((*ctx.keys.jwks()).clone()),
    )
}

/// Ready when the database answers.
pub async fn readyz(State(ctx): State<Ctx>) -> impl IntoResponse {
    if ctx.store.ping().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        rendezvous_service::error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "database unreachable",
        )
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Rendezvous users API", description = "Accounts, sessions and token keys. Errors are `{\"error\":{\"code\",\"message\"}}`."),
    paths(
        users::register, users::me, users::update_me, users::change_password, users::delete_me,
        sessions::login, sessions::refresh, sessions::logout,
        browser::register, browser::login, browser::refresh, browser::logout, jwks,
    ),
    components(schemas(ErrorBody, BrowserSession)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Every route of the users service, without fallback and without its OpenAPI
/// document (see [`ApiDoc`]), so `rendezvous up` can merge it with other services'
/// routes and serve one document for all.
pub fn routes(ctx: Ctx) -> Router {
    Router::new()
        .route("/api/users", post(users::register))
        .route(
            "/api/users/me",
            get(users::me)
                .patch(users::update_me)
                .delete(users::delete_me),
        )
        .route("/api/users/me/password", put(users::change_password))
        .route(
            "/api/sessions",
            post(sessions::login).delete(sessions::logout),
        )
        .route("/api/sessions/refresh", post(sessions::refresh))
        .route("/api/browser/users", post(browser::register))
        .route(
            "/api/browser/sessions",
            post(browser::login).delete(browser::logout),
        )
        .route("/api/browser/sessions/refresh", post(browser::refresh))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/readyz", get(readyz))
        .with_state(ctx)
}
