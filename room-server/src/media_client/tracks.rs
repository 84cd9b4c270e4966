//! Describing tracks to an `rtc` peer connection: encodings, simulcast,
//! sendonly transceivers, host candidates. Shared by the media client, the
//! SFU's tests and its benchmark.

use std::net::{IpAddr, SocketAddr};

use rtc::ice::candidate::CandidateConfig;
use rtc::ice::tcp_type::TcpType;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_VP8;
use rtc::peer_connection::transport::{CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit};
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

use super::MediaError;

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

/// VP8 encodings of a simulcast camera, one per (RTP stream id, SSRC).
pub fn simulcast_encodings<'a>(
    layers: impl IntoIterator<Item = (&'a str, u32)>,
) -> Vec<RTCRtpEncodingParameters> {
    layers
        .into_iter()
        .map(|(rid, ssrc)| {
            let mut e = send_encoding(RtpCodecKind::Video, MIME_TYPE_VP8, 90_000, 0, ssrc);
            e.rtp_coding_parameters.rid = rid.to_owned();
            e
        })
        .collect()
}

/// A sendonly transceiver on `pc` for one track sending `codings`: one
/// encoding, or several with RTP stream ids (simulcast).
pub fn add_sendonly(
    pc: &mut RTCPeerConnection,
    stream: String,
    id: String,
    kind: RtpCodecKind,
    codings: Vec<RTCRtpEncodingParameters>,
) -> Result<RTCRtpSenderId, MediaError> {
    let send_encodings = if codings.len() > 1 {
        codings.clone()
    } else {
        Vec::new()
    };
    let track = MediaStreamTrack::new(stream, id.clone(), id, kind, codings);
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        streams: Vec::new(),
        send_encodings,
    };
    let transceiver = pc.add_transceiver_from_track(track, Some(init))?;
    Ok(RTCRtpSenderId::from(transceiver))
}

/// `addr` as a peer connection's one host candidate (UDP).
pub fn host_candidate(addr: SocketAddr) -> Result<RTCIceCandidateInit, MediaError> {
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
    .new_candidate_host()?;
    Ok(RTCIceCandidate::from(&host).to_json()?)
}

/// An active ICE-TCP host candidate at `ip` (RFC 6544: port 9, a placeholder,
/// since the connection's own port is chosen when it opens).
pub fn tcp_active_candidate(ip: IpAddr) -> Result<RTCIceCandidateInit, MediaError> {
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "tcp".to_owned(),
            address: ip.to_string(),
            port: 9,
            component: 1,
            ..Default::default()
        },
        tcp_type: TcpType::Active,
    }
    .new_candidate_host()?;
    Ok(RTCIceCandidate::from(&host).to_json()?)
}

/// The passive ICE-TCP candidate an SDP (the room's answer) offers, if any.
pub fn passive_tcp_candidate(sdp: &str) -> Option<SocketAddr> {
    sdp.lines().find_map(|line| {
        let c = line.trim_end().strip_prefix("a=candidate:")?;
        let c = rtc::ice::candidate::unmarshal_candidate(c).ok()?;
        if !c.network_type().is_tcp() || c.tcp_type() != TcpType::Passive {
            return None;
        }
        Some(SocketAddr::new(c.address().parse().ok()?, c.port()))
    })
}

/// The id sender `sender` of `pc` negotiated for header extension `uri`.
pub fn extension_id(pc: &mut RTCPeerConnection, sender: RTCRtpSenderId, uri: &str) -> Option<u8> {
    let mut s = pc.rtp_sender(sender)?;
    let params = &s.get_parameters().rtp_parameters;
    let ext = params.header_extensions.iter().find(|e| e.uri == uri)?;
    u8::try_from(ext.id).ok()
}
