//! The task of a media session: its `rtc` peer connection, its link to the room
//! (a UDP socket, or an ICE-TCP connection), timers and synthetic streams.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::sdp::extmap::{AUDIO_LEVEL_URI, SDES_MID_URI, SDES_RTP_STREAM_ID_URI};
use rtc::shared::tcp_framing::{frame_packet, TcpFrameDecoder};
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::synth::{Extensions, Sender};
use super::tracks::{extension_id, passive_tcp_candidate};
use super::{unpoisoned, Command, Counters, MediaError, OPUS_PT, VP8_PT};
use crate::media::keyframe::is_keyframe_request;
use crate::protocol::TrackKind;

/// How long an ICE-TCP connection to the room may take to open.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the session's packets reach the room.
pub(super) enum Link {
    /// A UDP socket bound to `local`.
    Udp {
        socket: UdpSocket,
        local: SocketAddr,
    },
    /// ICE-TCP from `ip`: the connection opens once the room's answer names its
    /// passive candidate; every packet is an RFC 4571 frame on it.
    Tcp {
        ip: IpAddr,
        stream: Option<TcpLink>,
        decoder: TcpFrameDecoder,
    },
}

/// An open ICE-TCP connection and its two ends, read once when it opened.
pub(super) struct TcpLink {
    stream: TcpStream,
    room: SocketAddr,
    local: SocketAddr,
}

/// One packet that arrived, as the peer connection is told of it.
struct Arrival {
    from: SocketAddr,
    local: SocketAddr,
    protocol: TransportProtocol,
    data: Vec<u8>,
}

impl Link {
    /// Wait for the next packets (TCP may bring several at once, or none yet).
    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<Vec<Arrival>> {
        match self {
            Link::Udp { socket, local } => {
                let (n, from) = socket.recv_from(buf).await?;
                Ok(vec![Arrival {
                    from,
                    local: *local,
                    protocol: TransportProtocol::UDP,
                    data: buf[..n].to_vec(),
                }])
            }
            Link::Tcp {
                stream: Some(link),
                decoder,
                ..
            } => {
                // `read` is cancel-safe; the decoder keeps partial frames.
                let n = link.stream.read(buf).await?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                decoder.extend_from_slice(&buf[..n]);
                Ok(std::iter::from_fn(|| decoder.next_packet())
                    .map(|data| Arrival {
                        from: link.room,
                        local: link.local,
                        protocol: TransportProtocol::TCP,
                        data,
                    })
                    .collect())
            }
            Link::Tcp { stream: None, .. } => std::future::pending().await,
        }
    }

    async fn send(&mut self, to: SocketAddr, data: &[u8]) -> io::Result<()> {
        match self {
            Link::Udp { socket, .. } => socket.send_to(data, to).await.map(drop),
            Link::Tcp {
                stream: Some(link), ..
            } => link.stream.write_all(&frame_packet(data)).await,
            // Nothing can go out before the connection is open.
            Link::Tcp { stream: None, .. } => Ok(()),
        }
    }

    /// For ICE-TCP, open the connection to the passive candidate in `answer`.
    async fn open(&mut self, answer: &str) -> io::Result<()> {
        let Link::Tcp {
            ip,
            stream: stream @ None,
            ..
        } = self
        else {
            return Ok(());
        };
        let room = passive_tcp_candidate(answer).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "the room's answer offers no ICE-TCP candidate",
            )
        })?;
        let socket = match room {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(*ip, 0))?;
        let connected = tokio::time::timeout(TCP_CONNECT_TIMEOUT, socket.connect(room))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        connected.set_nodelay(true)?;
        *stream = Some(TcpLink {
            room: connected.peer_addr()?,
            local: connected.local_addr()?,
            stream: connected,
        });
        Ok(())
    }
}

/// The task's side: the peer connection, its link and the streams it sends.
pub(super) struct Peer {
    pub(super) pc: RTCPeerConnection,
    pub(super) link: Link,
    pub(super) senders: Vec<Sender>,
    pub(super) counters: Arc<Mutex<Counters>>,
    /// Received track id → (media stream id, kind).
    pub(super) tracks: HashMap<String, (String, RtpCodecKind)>,
    /// The room answered our offer: media may flow.
    pub(super) negotiated: bool,
}

impl Peer {
    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut buf = vec![0u8; 2048];
        loop {
            let now = Instant::now();
            let next_media = self
                .senders
                .iter()
                .map(|s| s.next)
                .min()
                .filter(|_| self.negotiated && self.connected());
            let wake = [self.pc.poll_timeout(), next_media]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_millis(100))
                .max(now);
            tokio::select! {
                got = self.link.recv(&mut buf) => match got {
                    Ok(arrivals) => arrivals.into_iter().for_each(|a| self.read(a)),
                    Err(e) if matches!(self.link, Link::Tcp { .. }) => {
                        tracing::debug!(error = %e, "the ICE-TCP connection to the room ended");
                        self.lock().failed = true;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "media socket read failed");
                    }
                },
                cmd = commands.recv() => match cmd {
                    Some(c) => self.command(c).await,
                    None => break,
                },
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            }
            // Timers and media run whichever branch woke us, so a busy socket
            // cannot starve them.
            let now = Instant::now();
            if self.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = self.pc.handle_timeout(now);
            }
            if self.negotiated && self.connected() {
                self.send_media(now);
            }
            self.drain().await;
            if self.lock().failed {
                break;
            }
        }
        self.lock().stopped = true;
        let _ = self.pc.close();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        unpoisoned(&self.counters)
    }

    fn connected(&self) -> bool {
        self.lock().connected
    }

    async fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Answer(sdp) => {
                if let Err(e) = self.link.open(&sdp).await {
                    tracing::warn!(error = %e, "cannot open ICE-TCP to the room");
                    self.lock().failed = true;
                    return;
                }
                let result = RTCSessionDescription::answer(sdp)
                    .and_then(|answer| self.pc.set_remote_description(Instant::now(), answer));
                match result {
                    Ok(()) => {
                        self.negotiated = true;
                        self.resolve_extensions();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the room's answer was refused");
                        self.lock().failed = true;
                    }
                }
            }
            Command::Offer(sdp, reply) => {
                let answer = (|| {
                    let offer = RTCSessionDescription::offer(sdp)?;
                    self.pc.set_remote_description(now, offer)?;
                    let answer = self.pc.create_answer(None)?;
                    self.pc.set_local_description(now, answer)?;
                    self.pc.local_description().map(|d| d.sdp).ok_or(
                        rtc::shared::error::Error::Other("no local description".into()),
                    )
                })();
                self.resolve_extensions();
                let _ = reply.send(answer.map_err(MediaError::from));
            }
        }
    }

    fn read(&mut self, a: Arrival) {
        let msg = TaggedBytesMut {
            now: Instant::now(),
            transport: TransportContext {
                local_addr: a.local,
                peer_addr: a.from,
                ecn: None,
                transport_protocol: a.protocol,
            },
            message: BytesMut::from(&a.data[..]),
        };
        if let Err(e) = self.pc.handle_read(msg) {
            tracing::trace!(error = %e, "a packet was refused");
        }
    }

    /// Look up, after a negotiation, what each stream writes in header
    /// extensions: simulcast layers their mid and rid (on every packet; browsers
    /// stop after the first receiver report, which the room's `rtc` copes with
    /// too), audio its level.
    fn resolve_extensions(&mut self) {
        for i in 0..self.senders.len() {
            let (id, kind) = (self.senders[i].id, self.senders[i].kind);
            let names = match self.senders[i].rid.clone() {
                Some(rid) => {
                    let mid = self
                        .pc
                        .rtp_transceiver(id.into())
                        .and_then(|t| t.mid().clone());
                    let ids = (
                        extension_id(&mut self.pc, id, SDES_MID_URI),
                        extension_id(&mut self.pc, id, SDES_RTP_STREAM_ID_URI),
                    );
                    match (mid, ids) {
                        (Some(mid), (Some(m), Some(r))) => Some((m, mid, r, rid)),
                        _ => None,
                    }
                }
                None => None,
            };
            let level = match kind {
                TrackKind::Audio => extension_id(&mut self.pc, id, AUDIO_LEVEL_URI),
                TrackKind::Video => None,
            };
            self.senders[i].extensions = Extensions { names, level };
        }
    }

    /// Write every stream's due frames.
    fn send_media(&mut self, now: Instant) {
        for i in 0..self.senders.len() {
            if self.senders[i].next > now {
                continue;
            }
            let id = self.senders[i].id;
            let kind = self.senders[i].kind;
            let Extensions { names, level } = self.senders[i].extensions.clone();
            let s = &mut self.senders[i];
            let interval = s.interval();
            // Catch up at most one frame late; a stalled task does not burst.
            s.next = (s.next + interval).max(now);
            let timestamp = s.timestamp();
            let (packets, keyframe) = s.frame();
            let (ssrc, pt) = match kind {
                TrackKind::Audio => (s.ssrc, OPUS_PT),
                TrackKind::Video => (s.ssrc, VP8_PT),
            };
            let mut written = 0;
            for (payload, marker) in packets {
                let seq = s.seq;
                s.seq = seq.wrapping_add(1);
                let mut packet = rtc::rtp::Packet {
                    header: rtc::rtp::header::Header {
                        version: 2,
                        payload_type: pt,
                        sequence_number: seq,
                        timestamp,
                        ssrc,
                        marker,
                        ..Default::default()
                    },
                    payload: Bytes::from(payload),
                };
                if let Some((mid_id, mid, rid_id, rid)) = &names {
                    let h = &mut packet.header;
                    let _ = h.set_extension(*mid_id, Bytes::from(mid.clone().into_bytes()));
                    let _ = h.set_extension(*rid_id, Bytes::from(rid.clone().into_bytes()));
                }
                if let Some(level_id) = level {
                    // Voice activity bit and -30 dBov: someone talking.
                    let _ = packet
                        .header
                        .set_extension(level_id, Bytes::from_static(&[0x80 | 30]));
                }
                let Some(mut sender) = self.pc.rtp_sender(id) else {
                    break;
                };
                if sender.write_rtp(now, packet).is_ok() {
                    written += 1;
                }
            }
            let mut c = self.lock();
            match kind {
                TrackKind::Audio => c.audio_packets_sent += written,
                TrackKind::Video => {
                    c.video_packets_sent += written;
                    c.video_frames_sent += 1;
                    c.keyframes_sent += u64::from(keyframe);
                }
            }
        }
    }

    /// Move everything the peer has queued: events, received media, datagrams.
    async fn drain(&mut self) {
        while let Some(ev) = self.pc.poll_event() {
            match ev {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => {
                    let mut c = self.lock();
                    c.connected = s == RTCPeerConnectionState::Connected;
                    if s == RTCPeerConnectionState::Failed {
                        c.failed = true;
                    }
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let kind = self
                        .pc
                        .rtp_receiver(init.receiver_id)
                        .map(|r| r.track().kind());
                    if let (Some(kind), Some(stream)) = (kind, init.stream_ids.first()) {
                        self.tracks
                            .insert(init.track_id.clone(), (stream.clone(), kind));
                    }
                }
                _ => {}
            }
        }
        while let Some(msg) = self.pc.poll_read() {
            match msg.message {
                RTCMessage::RtpPacket(track, p) => {
                    let Some((stream, kind)) = self.tracks.get(&track).cloned() else {
                        continue;
                    };
                    let mut c = self.lock();
                    let r = c.by_stream.entry(stream).or_default();
                    r.bytes += p.payload.len() as u64;
                    match kind {
                        RtpCodecKind::Audio => r.audio_packets += 1,
                        _ => {
                            r.video_packets += 1;
                            r.video_frames += u64::from(p.header.marker);
                        }
                    }
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    for p in &packets {
                        if !is_keyframe_request(p.as_ref()) {
                            continue;
                        }
                        self.lock().keyframe_requests += 1;
                        let asked = p.destination_ssrc();
                        for s in &mut self.senders {
                            if asked.contains(&s.ssrc) {
                                s.keyframe_due = true;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        while let Some(msg) = self.pc.poll_write() {
            let to = msg.transport.peer_addr;
            if let Err(e) = self.link.send(to, &msg.message).await {
                tracing::debug!(error = %e, %to, "media send failed");
            }
        }
    }
}
