//! How a test peer describes a track it sends; shared by the SFU's unit tests,
//! its loopback tests and its benchmark (the last two include this file with
//! `#[path]`), so the three speak of tracks alike.

use std::net::SocketAddr;

use rtc::ice::candidate::CandidateConfig;
use rtc::peer_connection::transport::{CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};

/// One encoding of `mime` at `clock` Hz with a fixed `ssrc`; Opus gets the
/// `fmtp` browsers use.
pub fn send_encoding(
    kind: RtpCodecKind,
    mime: &str,
    clock: u32,
    channels: u16,
    ssrc: u32,
) -> RTCRtpEncodingParameters {
    RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters {
            ssrc: Some(ssrc),
            ..Default::default()
        },
        active: true,
        codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate: clock,
            channels,
            sdp_fmtp_line: if kind == RtpCodecKind::Audio {
                "minptime=10;useinbandfec=1".to_owned()
            } else {
                String::new()
            },
            rtcp_feedback: vec![],
        },
        ..Default::default()
    }
}

/// `addr` as a peer connection's one host candidate (UDP).
#[allow(dead_code)] // The loopback tests use `webrtc`'s own gathering.
pub fn host_candidate(addr: SocketAddr) -> RTCIceCandidateInit {
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .expect("a valid host candidate");
    RTCIceCandidate::from(&host)
        .to_json()
        .expect("a candidate serializes")
}
