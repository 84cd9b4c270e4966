//! Test helpers: an in-process room on port 0 with a test signing key, and clients.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use rendezvous_api::{Grants, JwkSet, RoomClaims};
use rendezvous_auth::{now_unix, SigningKey};
use rendezvous_room::client::{ClientError, ConnectOptions, Incoming, RoomClient};
use rendezvous_room::protocol::{CloseReason, Envelope, ServerEvent};
use rendezvous_room::{Args, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ROOM: &str = "r1";
/// Every wait in these tests is bounded so a bug fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestRoom {
    pub addr: SocketAddr,
    /// The media port (UDP, and TCP for ICE-TCP unless turned off).
    pub media: SocketAddr,
    pub key: SigningKey,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<rendezvous_room::Result<CloseReason>>>,
}

pub fn mk_key_and_args(customize: impl FnOnce(&mut Args)) -> (SigningKey, Args) {
    let key = SigningKey::generate().expect("key");
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![key.jwk()],
    })
    .unwrap();
    let mut args = Args::with_defaults(ROOM, &jwks);
    customize(&mut args);
    (key, args)
}

impl TestRoom {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(customize: impl FnOnce(&mut Args)) -> Self {
        let (key, args) = mk_key_and_args(customize);
        let server = Server::bind(args).await.expect("bind");
        let addr = server.local_addr();
        let media = server.media_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let handle = tokio::spawn(server.serve(shutdown));
        Self {
            addr,
            media,
            key,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The room's `/metrics` page.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.http("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn token_with(&self, sub: &str, grants: Grants, f: impl FnOnce(&mut RoomClaims)) -> String {
        let now = now_unix();
        let mut claims = RoomClaims {
            sub: sub.into(),
            name: sub.to_uppercase(),
            room: ROOM.into(),
            grants,
            iat: now,
            exp: now + 300,
            iss: "rendezvous-router".into(),
            aud: "rendezvous-room".into(),
        };
        f(&mut claims);
        self.key.sign(&claims).expect("sign")
    }

    pub fn token(&self, sub: &str) -> String {
        self.token_with(sub, Grants::participant(), |_| {})
    }

    pub fn mod_token(&self, sub: &str) -> String {
        self.token_with(sub, Grants::creator(), |_| {})
    }

    pub async fn join(&self, sub: &str) -> RoomClient {
        RoomClient::connect(&self.url(), &self.token(sub))
            .await
            .expect("join")
    }

    pub async fn join_mod(&self, sub: &str) -> RoomClient {
        RoomClient::connect(&self.url(), &self.mod_token(sub))
            .await
            .expect("join")
    }

    pub async fn try_join(&self, token: String) -> Result<RoomClient, ClientError> {
        RoomClient::connect_with(ConnectOptions::new(self.url(), token)).await
    }

    /// Fire the shutdown future.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Wait for `serve` to return.
    pub async fn ended(&mut self) -> CloseReason {
        let handle = self.handle.take().expect("not awaited yet");
        within(handle).await.expect("join").expect("serve")
    }
}

/// Await with the test-wide bound.
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f).await.expect("timed out")
}

/// Skip events until one matches.
pub async fn expect_event(
    client: &mut RoomClient,
    mut pred: impl FnMut(&ServerEvent) -> bool,
) -> Envelope {
    within(async {
        loop {
            match client.recv().await {
                Some(Incoming::Event(env)) if pred(&env.event) => return env,
                Some(Incoming::Event(_)) => continue,
                other => panic!("connection ended while waiting: {other:?}"),
            }
        }
    })
    .await
}

/// Skip events until the socket closes; returns the close code and reason.
pub async fn expect_close(client: &mut RoomClient) -> (u16, String) {
    within(async {
        loop {
            match client.recv().await {
                Some(Incoming::Closed { code, reason }) => return (code, reason),
                Some(_) => continue,
                None => panic!("no close frame"),
            }
        }
    })
    .await
}

/// The `seq` of a chat message event with this text.
pub async fn expect_message(client: &mut RoomClient, text: &str) -> u64 {
    let env = expect_event(
        client,
        |e| matches!(e, ServerEvent::Message { text: t, .. } if t == text),
    )
    .await;
    env.seq
}

pub type RawSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A bare tungstenite client, joined (hello sent, welcome read) and then left to
/// the test: one that stops polling it also stops answering pings.
pub async fn raw_join(room: &TestRoom, sub: &str) -> RawSocket {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

    let url = format!("{}?token={}", room.url(), room.token(sub));
    let (mut ws, _) = tokio_tungstenite::connect_async(url.into_client_request().unwrap())
        .await
        .expect("connect");
    ws.send(Message::text(r#"{"type":"hello","protocolVersion":1}"#))
        .await
        .unwrap();
    within(async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains(r#""type":"welcome""#) => return,
                Some(Ok(_)) => continue,
                other => panic!("no welcome: {other:?}"),
            }
        }
    })
    .await;
    ws
}

/// The value of the first sample in a `/metrics` page whose line starts with
/// `name` (a metric name, with its labels if it has any).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line.rsplit(' ').next()?.parse().ok()
}
