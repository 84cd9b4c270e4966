//! `RoomClient`: a Rust client of the room protocol (the seeds' RoomClient).
//!
//! `connect` opens the WebSocket, sends `hello` and waits for `welcome`; a refusal
//! comes back as [`ClientError::Refused`] with the close code. After that a reader
//! task turns frames into [`Incoming`] items on a bounded channel and a writer task
//! sends commands. A caller that stops calling [`RoomClient::recv`] stops the reader
//! too, so the server sees real back-pressure (that is how tests make a slow consumer).

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::protocol::{
    ClientMessage, Envelope, ServerEvent, Welcome, BEARER_PROTOCOL_PREFIX, PROTOCOL_VERSION,
    SUBPROTOCOL,
};

/// Events buffered between the socket and the caller by default. Large enough to
/// ride out a burst in a busy room; small enough that a stuck caller pushes back.
pub const DEFAULT_EVENT_BUFFER: usize = 1024;
/// Commands buffered towards the socket: callers wait beyond this.
const COMMAND_BUFFER: usize = 256;

/// Why a client could not connect or talk.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("WebSocket error: {0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("the room refused us: {code} {reason}")]
    Refused { code: u16, reason: String },
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("the connection is closed")]
    Closed,
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// What arrives from the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A parsed event.
    Event(Envelope),
    /// An unparsed text frame (when [`ConnectOptions::parse`] is false).
    Frame(String),
    /// The server closed the socket (1006 when it vanished without a close frame).
    Closed { code: u16, reason: String },
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The WebSocket URL, e.g. `ws://127.0.0.1:PORT/ws`.
    pub url: String,
    /// The room token.
    pub token: String,
    /// How the token travels; by default as a subprotocol, out of URLs and logs.
    pub token_via: TokenVia,
    /// The last `seq` seen on a previous connection, to resume.
    pub resume_from: Option<u64>,
    /// Capacity of the event channel.
    pub event_buffer: usize,
    /// Parse frames into [`Incoming::Event`]; false yields [`Incoming::Frame`].
    pub parse: bool,
    /// Hand every text frame to this callback on the reader task instead of
    /// queueing it (load generators: no copy, no channel, no extra task wake).
    /// Only the final [`Incoming::Closed`] is still queued.
    pub observer: Option<FrameObserver>,
}

/// Where the room token goes in the WebSocket handshake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenVia {
    /// `Sec-WebSocket-Protocol: rendezvous.v1, bearer.<token>`; the server must
    /// select `rendezvous.v1` (what browsers do too).
    #[default]
    Subprotocol,
    /// `Authorization: Bearer <token>` (older clients, non-browser tools).
    Header,
    /// `?token=<token>` (older browser clients; ends up in access logs).
    Query,
}

/// A callback that sees each text frame as it arrives.
#[derive(Clone)]
pub struct FrameObserver(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for FrameObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameObserver")
    }
}

impl ConnectOptions {
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: token.into(),
            token_via: TokenVia::default(),
            resume_from: None,
            event_buffer: DEFAULT_EVENT_BUFFER,
            parse: true,
            observer: None,
        }
    }
}

/// A connected, welcomed participant.
#[derive(Debug)]
pub struct RoomClient {
    welcome: Welcome,
    welcome_seq: u64,
    last_seq: u64,
    commands: mpsc::Sender<Message>,
    events: mpsc::Receiver<Incoming>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl RoomClient {
    /// Connect with the token offered as a `bearer.<token>` subprotocol.
    pub async fn connect(url: &str, token: &str) -> Result<Self> {
        Self::connect_with(ConnectOptions::new(url, token)).await
    }

    /// Connect with options (token transport, resume, raw frames).
    pub async fn connect_with(opts: ConnectOptions) -> Result<Self> {
        let url = if opts.token_via == TokenVia::Query {
            let sep = if opts.url.contains('?') { '&' } else { '?' };
            format!("{}{sep}token={}", opts.url, opts.token)
        } else {
            opts.url.clone()
        };
        let mut request = url.into_client_request()?;
        let header = match opts.token_via {
            TokenVia::Subprotocol => Some((
                "sec-websocket-protocol",
                format!("{SUBPROTOCOL}, {BEARER_PROTOCOL_PREFIX}{}", opts.token),
            )),
            TokenVia::Header => Some(("authorization", format!("Bearer {}", opts.token))),
            TokenVia::Query => None,
        };
        if let Some((name, value)) = header {
            let value = value
                .parse()
                .map_err(|_| ClientError::Protocol("token is not a valid header".into()))?;
            request.headers_mut().insert(name, value);
        }
        let (mut ws, response) = tokio_tungstenite::connect_async(request).await?;
        // tungstenite checks the selection was among our offers; make sure it is
        // the protocol, not the token.
        if opts.token_via == TokenVia::Subprotocol {
            let selected = response.headers().get("sec-websocket-protocol");
            if selected.and_then(|v| v.to_str().ok()) != Some(SUBPROTOCOL) {
                let msg = format!("the server selected {selected:?}, not {SUBPROTOCOL}");
                return Err(ClientError::Protocol(msg));
            }
        }
        let hello = ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            resume_from: opts.resume_from,
        };
        ws.send(Message::text(hello.to_json())).await?;
        let (welcome, welcome_seq) = loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let env: Envelope = serde_json::from_str(&text)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    match env.event {
                        ServerEvent::Welcome(w) => break (*w, env.seq),
                        other => {
                            let msg = format!("expected welcome, got {other:?}");
                            return Err(ClientError::Protocol(msg));
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = close_parts(frame);
                    return Err(ClientError::Refused { code, reason });
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => return Err(ClientError::Closed),
            }
        };
        let (mut sink, mut stream) = ws.split();
        let (event_tx, events) = mpsc::channel(opts.event_buffer.max(1));
        let (commands, mut command_rx) = mpsc::channel::<Message>(COMMAND_BUFFER);
        let parse = opts.parse;
        let observer = opts.observer.clone();
        let reader = tokio::spawn(async move {
            let mut closed = None;
            while let Some(msg) = stream.next().await {
                let item = match msg {
                    Ok(Message::Text(text)) if observer.is_some() => {
                        if let Some(FrameObserver(f)) = &observer {
                            f(&text);
                        }
                        continue;
                    }
                    Ok(Message::Text(text)) if parse => match serde_json::from_str(&text) {
                        Ok(env) => Incoming::Event(env),
                        Err(e) => {
                            tracing::warn!(error = %e, "unparseable event");
                            continue;
                        }
                    },
                    Ok(Message::Text(text)) => Incoming::Frame(text.to_string()),
                    Ok(Message::Close(frame)) => {
                        // Keep polling so tungstenite flushes its close reply.
                        let (code, reason) = close_parts(frame);
                        closed = Some(Incoming::Closed { code, reason });
                        continue;
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                };
                if event_tx.send(item).await.is_err() {
                    return;
                }
            }
            let closed = closed.unwrap_or(Incoming::Closed {
                code: 1006,
                reason: "connection lost".into(),
            });
            let _ = event_tx.send(closed).await;
        });
        let writer = tokio::spawn(async move {
            while let Some(msg) = command_rx.recv().await {
                let is_close = matches!(msg, Message::Close(_));
                if sink.send(msg).await.is_err() || is_close {
                    break;
                }
            }
        });
        Ok(Self {
            welcome,
            welcome_seq,
            last_seq: welcome_seq,
            commands,
            events,
            reader,
            writer,
        })
    }

    /// The `welcome` this connection received.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The `seq` of the `welcome`.
    pub fn welcome_seq(&self) -> u64 {
        self.welcome_seq
    }

    /// The highest `seq` received so far (what to resume from).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Send a protocol message.
    pub async fn send(&self, msg: &ClientMessage) -> Result<()> {
        self.send_raw(msg.to_json()).await
    }

    /// Post a chat message.
    pub async fn say(&self, text: impl Into<String>) -> Result<()> {
        let msg = ClientMessage::Send {
            text: text.into(),
            client_id: None,
        };
        self.send(&msg).await
    }

    /// Send any text frame, valid or not (tests, fuzzing).
    pub async fn send_raw(&self, text: impl Into<String>) -> Result<()> {
        let msg = Message::text(text.into());
        self.commands
            .send(msg)
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// The next item from the room; `None` after the close was delivered.
    pub async fn recv(&mut self) -> Option<Incoming> {
        let item = self.events.recv().await;
        if let Some(Incoming::Event(env)) = &item {
            self.last_seq = self.last_seq.max(env.seq);
        }
        item
    }

    /// The next event, or an error if the connection closed first.
    pub async fn next_event(&mut self) -> Result<Envelope> {
        match self.recv().await {
            Some(Incoming::Event(env)) => Ok(env),
            Some(Incoming::Closed { code, reason }) => Err(ClientError::Refused { code, reason }),
            Some(Incoming::Frame(text)) => {
                serde_json::from_str(&text).map_err(|e| ClientError::Protocol(e.to_string()))
            }
            None => Err(ClientError::Closed),
        }
    }

    /// Leave: close with 1000 (no grace period) and wait for the server's answer.
    pub async fn close(mut self) {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        };
        let _ = self.commands.send(Message::Close(Some(frame))).await;
        let wait = async { while self.events.recv().await.is_some() {} };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), wait).await;
    }

    /// Vanish without a close frame, as a lost network would (starts the grace period).
    pub fn drop_connection(self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl Drop for RoomClient {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

fn close_parts(frame: Option<CloseFrame>) -> (u16, String) {
    match frame {
        Some(f) => (u16::from(f.code), f.reason.to_string()),
        None => (1005, String::new()),
    }
}
