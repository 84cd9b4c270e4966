//! The sans-IO media core: a Selective Forwarding Unit behind one UDP port per room.
//!
//! The shell feeds [`MediaInput`]s (datagrams with their addresses, signalling
//! requests from the room's WebSocket, timer ticks) together with the current time
//! and drains [`MediaOutput`]s (datagrams to send, signalling events for one
//! participant). The core owns no socket, task or clock, like the chat core.
//!
//! Packets arrive and leave over UDP, or over ICE-TCP (RFC 6544: a passive TCP
//! candidate on the same port number, each packet framed by RFC 4571) for
//! clients whose network drops UDP; the core sees both as [`Transport`]-tagged
//! packets and never a socket.
//!
//! Data flow: a datagram is routed to one participant's WebRTC session by
//! [`demux::Demuxer`] (the ICE username fragment of a STUN check names the session;
//! after that the remote address does). Each session is an `rtc` peer connection
//! (ICE-lite, DTLS-SRTP, RTP/RTCP interceptors). RTP a publisher sends is forwarded
//! without decoding to every subscriber's sendonly transceiver
//! ([`forward::ForwardTable`]); keyframe requests (PLI/FIR) from subscribers go back
//! to the publisher, throttled.

#[cfg(target_os = "linux")]
pub mod batch;
pub(crate) mod codecs;
mod congestion;
mod demux;
mod forward;
pub(crate) mod keyframe;
mod session;
mod sfu;
pub(crate) mod shell;
mod simulcast;
mod speaker;
pub(crate) mod tcp;
#[cfg(test)]
mod tests;
mod ufrag;
pub(crate) mod vp8;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

pub use session::CONNECT_TIMEOUT;
pub use sfu::{ReceptionQuality, Sfu, SfuConfig, SfuStats};

/// The interface the shell drives; [`Sfu`] is the implementation.
pub trait MediaCore {
    /// Feed one input observed at `now`.
    fn handle_input(&mut self, input: MediaInput, now: Instant);
    /// The next thing the shell must do, if any.
    fn poll_output(&mut self) -> Option<MediaOutput>;
    /// When to feed [`MediaInput::Timeout`] next.
    fn poll_timeout(&self) -> Option<Instant>;
}

/// Kinds of media a participant may publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    /// The RTP clock of the one codec the SFU speaks for this kind (Opus, VP8).
    pub const fn clock_rate(self) -> u32 {
        match self {
            MediaKind::Audio => 48_000,
            MediaKind::Video => 90_000,
        }
    }
}

/// How a packet travels between the room and a participant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A datagram on the room's media socket.
    #[default]
    Udp,
    /// One RFC 4571 frame on a TCP connection a client opened to the media
    /// port (ICE-TCP); the address is the client's end of that connection.
    Tcp,
}

impl Transport {
    /// The tag `rtc` gives the same transport.
    pub(crate) fn protocol(self) -> rtc::shared::TransportProtocol {
        match self {
            Transport::Udp => rtc::shared::TransportProtocol::UDP,
            Transport::Tcp => rtc::shared::TransportProtocol::TCP,
        }
    }

    /// The transport of an `rtc` tag (UDP for any it may add).
    pub(crate) fn of(protocol: rtc::shared::TransportProtocol) -> Self {
        match protocol {
            rtc::shared::TransportProtocol::TCP => Transport::Tcp,
            _ => Transport::Udp,
        }
    }
}

/// What the media core is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaInput {
    /// A packet that arrived on the room's media port.
    Datagram {
        source: SocketAddr,
        destination: SocketAddr,
        transport: Transport,
        data: Vec<u8>,
    },
    /// A participant's SDP offer (`offer` frame). `publish` and `subscribe` are the
    /// token's grants: without `publish` their media is not forwarded, without
    /// `subscribe` nobody's media is forwarded to them.
    Offer {
        participant: String,
        sdp: String,
        publish: bool,
        subscribe: bool,
        /// Mids of m-lines carrying a shared screen (forwarded as a stream of
        /// their own, announced with `screen`).
        screen: Vec<String>,
    },
    /// A participant's answer to a server offer (`answer` frame).
    Answer { participant: String, sdp: String },
    /// A trickled remote ICE candidate (`ice_candidate` frame).
    Candidate {
        participant: String,
        candidate: String,
        sdp_mid: Option<String>,
    },
    /// The participant left the room (or lost the grants): end their session and
    /// unpublish their tracks everywhere.
    Leave { participant: String },
    /// `participant` wants video only from the participants in `video` (None:
    /// from everyone). For their current session.
    Watch {
        participant: String,
        video: Option<Vec<String>>,
        /// The height (device pixels) `participant` shows each publisher's
        /// camera at: the ceiling of the simulcast layer they are sent.
        heights: BTreeMap<String, u32>,
    },
    /// A moderator stopped (`muted`) or allowed again forwarding `participant`'s
    /// media of `kind`. Kept across that participant's sessions.
    Mute {
        participant: String,
        kind: MediaKind,
        muted: bool,
    },
    /// The time returned by [`MediaCore::poll_timeout`] has come.
    Timeout,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaOutput {
    /// Send a packet: a datagram from the media socket, or a frame on the TCP
    /// connection from `destination`.
    Transmit {
        source: SocketAddr,
        destination: SocketAddr,
        transport: Transport,
        data: Vec<u8>,
    },
    /// Close the TCP connection from `peer`: its session ended, or what it sent
    /// belongs to no session.
    Hangup { peer: SocketAddr },
    /// Send `answer` to a participant.
    Answer { participant: String, sdp: String },
    /// Send a server-initiated `offer` (renegotiation) to a participant.
    Offer { participant: String, sdp: String },
    /// Send a local ICE candidate to a participant.
    Candidate {
        participant: String,
        candidate: String,
        sdp_mid: Option<String>,
    },
    /// Tell `participant` that the m-line `mid` of their session carries (or, with
    /// `added: false`, no longer carries) `owner`'s track.
    Track {
        participant: String,
        owner: String,
        kind: MediaKind,
        mid: String,
        stream_id: String,
        /// The track is a shared screen.
        screen: bool,
        added: bool,
    },
    /// The loudest voice in the room changed: `participant` (None: nobody speaks).
    ActiveSpeaker { participant: Option<String> },
    /// `participant`'s session ended by itself: ICE never connected within
    /// [`CONNECT_TIMEOUT`] or failed later. Their tracks are unpublished.
    Ended { participant: String },
    /// A signalling request of `participant` was refused.
    Refused {
        participant: String,
        message: String,
    },
}
