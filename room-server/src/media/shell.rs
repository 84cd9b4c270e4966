//! The tokio side of the media core: the room's one UDP socket, and the TCP
//! connections of ICE-TCP clients (`tcp.rs`).
//!
//! The room's actor task owns a [`MediaShell`] next to the chat core: datagrams
//! and media timers go into the [`Sfu`], its datagrams go out of the socket and
//! its signalling events into the chat core, which sends them to the right
//! connection. One task for both keeps the two cores' views of who is here in
//! step without locks; a room is at most a few dozen people.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::tcp::TcpEvent;
use super::{MediaCore, MediaInput, MediaKind, MediaOutput, Sfu, SfuStats, Transport};
use crate::core::{Input, Room};
use crate::metrics::Metrics;

/// Receive buffer: one datagram. WebRTC keeps packets under the path MTU (about
/// 1200–1500 bytes); anything larger than this is not media and is cut short.
pub(crate) const DATAGRAM_BYTES: usize = 2048;

/// Datagrams taken from the socket per wake-up at most.
#[cfg(target_os = "linux")]
pub(crate) const RECV_BATCH: usize = super::batch::RECV_BATCH;
#[cfg(not(target_os = "linux"))]
pub(crate) const RECV_BATCH: usize = 1;

/// The media core and its socket.
pub(crate) struct MediaShell {
    pub sfu: Sfu,
    pub socket: Arc<UdpSocket>,
    pub local: SocketAddr,
    /// The writers of open ICE-TCP connections, by the client's address.
    pub tcp: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    pub metrics: Metrics,
    /// The SFU's counters as last exported.
    pub exported: SfuStats,
}

impl MediaShell {
    /// Feed the core and carry out what it asks.
    pub(crate) fn handle(&mut self, input: MediaInput, room: &mut Room) {
        self.sfu.handle_input(input, Instant::now());
        self.flush(room);
    }

    /// Datagrams that arrived together (`recvmmsg`): `got` gives the length and
    /// source of what is in each of `bufs`. All go into the core before its
    /// output goes out, in one batch of sends.
    pub(crate) fn datagrams(
        &mut self,
        bufs: &[Vec<u8>],
        got: &[(usize, SocketAddr)],
        room: &mut Room,
    ) {
        let now = Instant::now();
        for (buf, (len, source)) in bufs.iter().zip(got) {
            self.metrics.media_datagrams_in.inc();
            let input = MediaInput::Datagram {
                source: *source,
                destination: self.local,
                transport: Transport::Udp,
                data: buf[..*len].to_vec(),
            };
            self.sfu.handle_input(input, now);
        }
        self.flush(room);
    }

    /// Carry out what the core asks: send its packets, hand its signalling
    /// events to the chat core.
    fn flush(&mut self, room: &mut Room) {
        let now = Instant::now();
        let mut datagrams = Vec::new();
        while let Some(out) = self.sfu.poll_output() {
            match out {
                MediaOutput::Transmit {
                    destination,
                    transport: Transport::Udp,
                    data,
                    ..
                } => datagrams.push((destination, data)),
                MediaOutput::Transmit {
                    destination,
                    transport: Transport::Tcp,
                    data,
                    ..
                } => self.send_tcp(destination, data),
                MediaOutput::Hangup { peer } => {
                    // Dropping the writer ends the connection's task.
                    self.tcp.remove(&peer);
                }
                other => room.handle_input(Input::Media(other), now),
            }
        }
        self.transmit(&datagrams);
        self.metrics.media_sessions.set(self.sfu.sessions() as i64);
        self.count_tcp();
        self.export();
    }

    /// Send what the core asked, never waiting for the socket: a full send
    /// buffer drops the datagram, as a congested network would, and RTP copes.
    #[cfg(target_os = "linux")]
    fn transmit(&self, datagrams: &[(SocketAddr, Vec<u8>)]) {
        use std::os::fd::AsFd;
        let batch: Vec<(SocketAddr, &[u8])> = datagrams
            .iter()
            .map(|(to, d)| (*to, d.as_slice()))
            .collect();
        let (sent, dropped) = super::batch::send_all(self.socket.as_fd(), &batch);
        self.metrics.media_datagrams_out.inc_by(sent as u64);
        self.metrics.media_datagrams_dropped.inc_by(dropped as u64);
    }

    #[cfg(not(target_os = "linux"))]
    fn transmit(&self, datagrams: &[(SocketAddr, Vec<u8>)]) {
        for (destination, data) in datagrams {
            match self.socket.try_send_to(data, *destination) {
                Ok(_) => self.metrics.media_datagrams_out.inc(),
                Err(e) => {
                    self.metrics.media_datagrams_dropped.inc();
                    tracing::trace!(error = %e, %destination, "datagram dropped");
                }
            }
        }
    }

    /// Queue a packet for an ICE-TCP connection; a full queue drops it, as a
    /// full UDP send buffer would.
    fn send_tcp(&self, peer: SocketAddr, data: Vec<u8>) {
        match self.tcp.get(&peer).map(|w| w.try_send(data)) {
            Some(Ok(())) => self.metrics.media_datagrams_out.inc(),
            _ => self.metrics.media_datagrams_dropped.inc(),
        }
    }

    /// What an ICE-TCP connection's task reports.
    pub(crate) fn tcp_event(&mut self, event: TcpEvent, room: &mut Room) {
        match event {
            TcpEvent::Open { peer, writer } => {
                self.tcp.insert(peer, writer);
                self.count_tcp();
            }
            TcpEvent::Frame { peer, data } => {
                self.metrics.media_datagrams_in.inc();
                let input = MediaInput::Datagram {
                    source: peer,
                    destination: self.local,
                    transport: Transport::Tcp,
                    data,
                };
                self.handle(input, room);
            }
            TcpEvent::Closed { peer } => {
                self.tcp.remove(&peer);
                self.count_tcp();
            }
        }
    }

    fn count_tcp(&self) {
        self.metrics
            .media_tcp_connections
            .set(self.tcp.len() as i64);
    }

    /// Bring the media metrics up to the SFU's counters.
    fn export(&mut self) {
        for r in self.sfu.drain_reports() {
            let kind = match r.kind {
                MediaKind::Audio => "audio",
                MediaKind::Video => "video",
            };
            let m = &self.metrics;
            m.media_subscriber_loss
                .with_label_values(&[kind])
                .observe(r.loss);
            m.media_subscriber_jitter
                .with_label_values(&[kind])
                .observe(r.jitter);
            if let Some(rtt) = r.rtt {
                m.media_subscriber_rtt
                    .with_label_values(&[kind])
                    .observe(rtt);
            }
        }
        let now = self.sfu.stats();
        let was = std::mem::replace(&mut self.exported, now);
        if now == was {
            return;
        }
        let m = &self.metrics;
        m.media_tracks.set(now.tracks as i64);
        m.media_subscriptions.set(now.subscriptions as i64);
        for (counter, now, was) in [
            (&m.media_rtp_in, now.rtp_in, was.rtp_in),
            (&m.media_rtp_bytes_in, now.rtp_bytes_in, was.rtp_bytes_in),
            (&m.media_rtp_out, now.rtp_out, was.rtp_out),
            (&m.media_rtp_bytes_out, now.rtp_bytes_out, was.rtp_bytes_out),
            (&m.media_rtp_muted, now.rtp_muted, was.rtp_muted),
            (&m.media_rtp_unwatched, now.rtp_unwatched, was.rtp_unwatched),
            (
                &m.media_keyframe_requests,
                now.keyframe_requests,
                was.keyframe_requests,
            ),
            (&m.media_nacked, now.nacked, was.nacked),
            (
                &m.media_layer_switches,
                now.layer_switches,
                was.layer_switches,
            ),
            (
                &m.media_sessions_failed,
                now.sessions_failed,
                was.sessions_failed,
            ),
        ] {
            counter.inc_by(now.saturating_sub(was));
        }
    }
}

/// Wait for datagrams on the media socket and take what is waiting: up to
/// `bufs.len()` in one `recvmmsg` call, (length, source) of each in `got`.
/// Cancel-safe: nothing is read until the socket is ready.
#[cfg(target_os = "linux")]
pub(crate) async fn recv_datagrams(
    socket: &UdpSocket,
    bufs: &mut [Vec<u8>],
    got: &mut Vec<(usize, SocketAddr)>,
) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    loop {
        socket.readable().await?;
        let read = socket.try_io(tokio::io::Interest::READABLE, || {
            super::batch::recv_batch(socket.as_fd(), bufs, got)
        });
        match read {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One datagram at a time where there is no `recvmmsg`.
#[cfg(not(target_os = "linux"))]
pub(crate) async fn recv_datagrams(
    socket: &UdpSocket,
    bufs: &mut [Vec<u8>],
    got: &mut Vec<(usize, SocketAddr)>,
) -> std::io::Result<()> {
    let (n, source) = socket.recv_from(&mut bufs[0]).await?;
    got.push((n, source));
    Ok(())
}
