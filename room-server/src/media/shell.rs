//! The tokio side of the media core: the room's one UDP socket.
//!
//! The room's actor task owns a [`MediaShell`] next to the chat core: datagrams
//! and media timers go into the [`Sfu`], its datagrams go out of the socket and
//! its signalling events into the chat core, which sends them to the right
//! connection. One task for both keeps the two cores' views of who is here in
//! step without locks; a room is at most a few dozen people.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;

use super::{MediaCore, MediaInput, MediaKind, MediaOutput, Sfu, SfuStats};
use crate::core::{Input, Room};
use crate::metrics::Metrics;

/// Receive buffer: one datagram. WebRTC keeps packets under the path MTU (about
/// 1200–1500 bytes); anything larger than this is not media and is cut short.
pub(crate) const DATAGRAM_BYTES: usize = 2048;

/// The media core and its socket.
pub(crate) struct MediaShell {
    pub sfu: Sfu,
    pub socket: Arc<UdpSocket>,
    pub local: SocketAddr,
    pub metrics: Metrics,
    /// The SFU's counters as last exported.
    pub exported: SfuStats,
}

impl MediaShell {
    /// Feed the core and carry out what it asks.
    pub(crate) fn handle(&mut self, input: MediaInput, room: &mut Room) {
        let now = Instant::now();
        self.sfu.handle_input(input, now);
        let mut datagrams = Vec::new();
        while let Some(out) = self.sfu.poll_output() {
            match out {
                MediaOutput::Transmit {
                    destination, data, ..
                } => datagrams.push((destination, data)),
                other => room.handle_input(Input::Media(other), now),
            }
        }
        self.transmit(&datagrams);
        self.metrics.media_sessions.set(self.sfu.sessions() as i64);
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

    /// A datagram that arrived from `source`.
    pub(crate) fn datagram(&mut self, source: SocketAddr, data: &[u8], room: &mut Room) {
        self.metrics.media_datagrams_in.inc();
        let input = MediaInput::Datagram {
            source,
            destination: self.local,
            data: data.to_vec(),
        };
        self.handle(input, room);
    }
}
