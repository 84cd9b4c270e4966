//! Test harness: a users service on a real socket over a real database.
//!
//! SQLite: a fresh file per test. PostgreSQL: a fresh database per test on the
//! server named by `RENDEZVOUS_TEST_POSTGRES` (e.g. `postgres://postgres@127.0.0.1:5432`,
//! no database path), which `./scripts/test` starts. Without it the PostgreSQL half
//! is skipped locally, and fails under `CI=true`.
#![allow(dead_code)]

use std::path::PathBuf;

use rendezvous_service::HttpMetrics;
use rendezvous_users::{serve, Config, Ctx};
use serde_json::{json, Value};
use sqlx::Connection as _;

#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    /// The metrics listener (`--metrics-listen`).
    pub metrics_base: String,
    pub http: reqwest::Client,
    pub ctx: Ctx,
    pub database_url: String,
    tmp: Option<PathBuf>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(dir) = &self.tmp {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh database URL of the given kind, or `None` when PostgreSQL is not
/// configured outside CI.
pub async fn fresh_database(db: Db) -> Option<(String, Option<PathBuf>)> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join(format!("rendezvous-users-test-{id}"));
            let url = format!("sqlite://{}?mode=rwc", dir.join("users.db").display());
            Some((url, Some(dir)))
        }
        Db::Postgres => {
            let Ok(server) = std::env::var("RENDEZVOUS_TEST_POSTGRES") else {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("RENDEZVOUS_TEST_POSTGRES is not set: PostgreSQL is required under CI=true (run ./scripts/test)");
                }
                eprintln!(
                    "SKIPPED (not CI): set RENDEZVOUS_TEST_POSTGRES to run the PostgreSQL half"
                );
                return None;
            };
            let server = server.trim_end_matches('/');
            let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
                .await
                .expect("connect to the test PostgreSQL server");
            let name = format!("users_{id}");
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut admin)
                .await
                .expect("create test database");
            Some((format!("{server}/{name}"), None))
        }
    }
}

/// Start the users service on `db` with `tweak` applied to the test config.
pub async fn spawn_with(db: Db, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let (url, tmp) = fresh_database(db).await?;
    Some(spawn_on(url, tmp, tweak).await)
}

pub async fn spawn(db: Db) -> Option<TestApp> {
    spawn_with(db, |_| {}).await
}

/// Start the users service on an existing database (e.g. to test restarts).
pub async fn spawn_on(
    database_url: String,
    tmp: Option<PathBuf>,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let mut cfg = Config::test(database_url.clone());
    tweak(&mut cfg);
    let metrics = HttpMetrics::new("users");
    let ctx = Ctx::new(cfg, &metrics).await.expect("users service starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics_addr = metrics_listener.local_addr().unwrap();
    // The service's own wiring (`run` minus binding), so tests see what production serves.
    let served = serve(
        ctx.clone(),
        metrics,
        listener,
        metrics_listener,
        std::future::pending(),
    );
    let server = tokio::spawn(async move { served.await.expect("users service runs") });
    TestApp {
        base: format!("http://{addr}"),
        metrics_base: format!("http://{metrics_addr}"),
        http: reqwest::Client::new(),
        ctx,
        database_url,
        tmp,
        server,
    }
}

/// A response's status and JSON body (Null when empty or not JSON).
pub struct Res {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Res {
    /// The error code of a JSON error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The metrics exposition, from the metrics listener.
    pub async fn metrics(&self) -> String {
        let res = reqwest::get(format!("{}/metrics", self.metrics_base))
            .await
            .expect("metrics listener answers");
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Res {
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Res {
            status,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Res {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Res {
        self.call(reqwest::Method::POST, path, None, Some(body))
            .await
    }

    pub async fn get(&self, path: &str, token: &str) -> Res {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    /// Register `name` (`name@example.com`, password `password-of-NAME`); returns the session.
    pub async fn register(&self, name: &str) -> Value {
        let res = self
            .post(
                "/api/users",
                json!({
                    "email": format!("{name}@example.com"),
                    "username": name,
                    "displayName": format!("{name} display"),
                    "password": format!("password-of-{name}"),
                }),
            )
            .await;
        assert_eq!(res.status, 201, "register {name}: {}", res.body);
        res.body
    }

    pub async fn login(&self, login: &str, password: &str) -> Res {
        self.post(
            "/api/sessions",
            json!({"login": login, "password": password}),
        )
        .await
    }
}

/// Run each scenario against SQLite and PostgreSQL: `both!(name, ...)` expects
/// `async fn name(app: TestApp)` in the calling module. `both!(with TWEAK; name, ...)`
/// applies `TWEAK` (an `FnOnce(&mut Config)`) to the test config first. One `both!`
/// per module (it defines `mod sqlite` and `mod postgres`).
#[macro_export]
macro_rules! both {
    (with $tweak:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let app = $crate::common::spawn_with($crate::common::Db::Sqlite, $tweak).await.unwrap();
                    super::$name(app).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(app) = $crate::common::spawn_with($crate::common::Db::Postgres, $tweak).await else { return };
                    super::$name(app).await
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::both!(with |_| {}; $($name),*);
    };
}
