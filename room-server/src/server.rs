//! Start-up and shutdown: bind, announce the port, run the room, drain, return.
//!
//! Data flow: HTTP handlers and connection tasks → bounded channel → the room task
//! ([`crate::actor`]) → per-connection bounded outboxes → connection writers.

use std::future::{Future, IntoFuture};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rendezvous_api::JwkSet;
use rendezvous_auth::{Expect, KeySet, Verifier};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::actor::{self, ACTOR_QUEUE};
use crate::core::Room;
use crate::http::{app, AppState, Heartbeat, Occupancy, Shared};
use crate::media::shell::MediaShell;
use crate::media::{tcp, Sfu, SfuConfig};
use crate::metrics::Metrics;
use crate::protocol::CloseReason;
use crate::{Args, Error, Result};

/// How long connections get to flush `room_closed` and close after the room ends.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A bound room server that has not started serving yet.
pub struct Server {
    args: Args,
    listener: TcpListener,
    media: UdpSocket,
    /// ICE-TCP on the media port number (None with `--ice-tcp false`).
    media_tcp: Option<TcpListener>,
    verifier: Verifier,
}

/// ICE-TCP events queued for the room task; connection readers wait when it is
/// full, which pushes back on their clients.
const TCP_EVENTS: usize = 1024;

/// Tries at binding UDP and TCP to one free port number when `--media-port` is 0:
/// a port free for UDP may be taken for TCP.
const MEDIA_BIND_TRIES: usize = 16;

/// The media socket, and with `tcp` a TCP listener on the same port number.
async fn bind_media(addr: SocketAddr, tcp: bool) -> Result<(UdpSocket, Option<TcpListener>)> {
    let bind_error = |addr, source| Error::Bind { addr, source };
    let mut tries = 0;
    loop {
        tries += 1;
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| bind_error(addr, e))?;
        if !tcp {
            return Ok((udp, None));
        }
        let bound = udp.local_addr().map_err(|e| bind_error(addr, e))?;
        match TcpListener::bind(bound).await {
            Ok(listener) => return Ok((udp, Some(listener))),
            Err(_) if addr.port() == 0 && tries < MEDIA_BIND_TRIES => continue,
            Err(e) => return Err(bind_error(bound, e)),
        }
    }
}

impl Server {
    /// Check the configuration and bind the listening socket.
    pub async fn bind(args: Args) -> Result<Self> {
        let expect = Expect::new(args.token_issuer.clone(), args.token_audience.clone());
        let verifier = match (&args.token_jwks, &args.token_jwks_url) {
            (Some(jwks), _) => {
                let set: JwkSet =
                    serde_json::from_str(jwks).map_err(|e| Error::Jwks(e.to_string()))?;
                let keys = KeySet::from_jwks(&set).map_err(|e| Error::Jwks(e.to_string()))?;
                Verifier::with_keys(keys, expect)
            }
            (None, Some(url)) => Verifier::from_jwks_url(url.clone(), expect),
            (None, None) => return Err(Error::NoKeys),
        };
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: args.listen,
                source,
            })?;
        let media_addr = SocketAddr::new(args.listen.ip(), args.media_port);
        let (media, media_tcp) = bind_media(media_addr, args.ice_tcp).await?;
        Ok(Self {
            args,
            listener,
            media,
            media_tcp,
            verifier,
        })
    }

    /// The address actually bound (the port when `--listen` used port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// The media socket's address (the port when `--media-port` was 0).
    pub fn media_addr(&self) -> SocketAddr {
        self.media
            .local_addr()
            .expect("a bound UDP socket has an address")
    }

    /// The address participants are told to send media to: `--public-ip` (or
    /// the listen address) and the media port.
    pub fn media_candidate(&self) -> SocketAddr {
        let ip = self.args.public_ip.unwrap_or(self.args.listen.ip());
        SocketAddr::new(ip, self.media_addr().port())
    }

    /// Serve until the room ends (closed, ended, idle, lifetime or `shutdown`);
    /// returns why it ended once every connection has been closed.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<CloseReason> {
        let candidate = self.media_candidate();
        let Server {
            args,
            listener,
            media,
            media_tcp,
            verifier,
        } = self;
        if candidate.ip().is_unspecified() {
            tracing::warn!(%candidate, "no --public-ip: participants cannot reach the media socket");
        }
        let metrics = Metrics::new();
        let media = MediaShell {
            sfu: Sfu::new(SfuConfig {
                candidate,
                ice_tcp: media_tcp.is_some(),
                max_sessions: args.max_participants,
                delay_based_estimate: args.media_delay_estimate,
            }),
            local: media.local_addr().map_err(Error::Serve)?,
            socket: Arc::new(media),
            tcp: Default::default(),
            exported: Default::default(),
            metrics: metrics.clone(),
        };
        let (tx, rx) = mpsc::channel(ACTOR_QUEUE);
        // Capacity 1: nobody ever sends; only the closing of the channel matters.
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        let occupancy = Arc::new(Occupancy::new(args.max_participants));
        let state = AppState::new(Shared {
            room_id: args.room_id.clone(),
            verifier,
            actor: tx,
            metrics: metrics.clone(),
            next_conn: AtomicU64::new(1),
            ready: AtomicBool::new(true),
            over: tokio::sync::watch::Sender::new(false),
            hello_timeout: args.hello_timeout,
            outbox_frames: args.outbox_frames,
            heartbeat: Heartbeat::new(args.ping_interval, args.pong_timeout),
            max_frame_bytes: args.max_frame_bytes,
            occupancy: occupancy.clone(),
            _alive: alive_tx,
        });
        let room = Room::new(args.room_config(), Instant::now(), unix_ms());
        let span = tracing::info_span!("room", room_id = %args.room_id);
        let (tcp_tx, tcp_rx) = mpsc::channel(TCP_EVENTS);
        if let Some(listener) = media_tcp {
            let links = tcp::LINKS_PER_PARTICIPANT * args.max_participants;
            tokio::spawn(tcp::serve(listener, tcp_tx, links).instrument(span.clone()));
        }
        let mut actor = tokio::spawn(
            actor::run(room, rx, tcp_rx, media, metrics, occupancy, shutdown).instrument(span),
        );

        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = axum::serve(listener, app(state.clone()))
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .into_future();
        let mut server = tokio::spawn(server);

        let ended = tokio::select! {
            reason = &mut actor => reason.map_err(|e| Error::Task(e.to_string())),
            res = &mut server => {
                // The listener died: the room cannot take anyone; end it.
                let err = match res {
                    Ok(Ok(())) => Error::Task("the HTTP server stopped".into()),
                    Ok(Err(e)) => Error::Serve(e),
                    Err(e) => Error::Task(e.to_string()),
                };
                actor.abort();
                return Err(err);
            }
        };
        state.set_over();
        let _ = stop_tx.send(());
        drop(state);
        match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(Error::Serve(e)),
            Ok(Err(e)) => return Err(Error::Task(e.to_string())),
            Err(_) => tracing::warn!("HTTP server did not stop in time"),
        }
        if tokio::time::timeout(DRAIN_TIMEOUT, alive_rx.recv())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close in time");
        }
        ended
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Run one room: bind, print `{"event":"listening","addr":"IP:PORT"}` on stdout,
/// serve until the room ends for any reason, and return.
pub async fn run(args: Args, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    let watch_stdin = args.exit_on_stdin_eof;
    let server = Server::bind(args).await?;
    let shutdown = async move {
        if watch_stdin {
            tokio::select! {
                () = shutdown => {}
                () = stdin_closed() => tracing::info!("stdin closed: the parent is gone"),
            }
        } else {
            shutdown.await;
        }
    };
    let line = serde_json::json!({ "event": "listening", "addr": server.local_addr().to_string() });
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").map_err(Error::Serve)?;
        out.flush().map_err(Error::Serve)?;
    }
    let reason = server.serve(shutdown).await?;
    tracing::info!(?reason, "room server exiting");
    Ok(())
}

/// Resolves when stdin reaches end of file (or cannot be read). Reads on a plain
/// thread, not tokio's blocking pool, so a pending read never holds up process exit.
fn stdin_closed() -> impl Future<Output = ()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            use std::io::Read as _;
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 256];
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            drop(tx);
        });
    async move {
        match spawned {
            // The sender drops at end of file.
            Ok(_) => {
                let _ = rx.await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch stdin; relying on signals");
                std::future::pending::<()>().await;
            }
        }
    }
}
