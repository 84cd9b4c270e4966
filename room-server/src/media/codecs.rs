//! The codecs the SFU speaks.

use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::sdp::extmap::AUDIO_LEVEL_URI;
use rtc::shared::error::Result;

use super::MediaKind;

/// The payload type of VP8's retransmission format (RFC 4588, `apt=96`).
pub(crate) const RTX_PT: u8 = 97;

/// Whether `mime` is RTX, the retransmission format.
pub(crate) fn is_rtx(mime: &str) -> bool {
    mime.eq_ignore_ascii_case(MIME_TYPE_RTX)
}

/// The video codecs: VP8, and its RTX format.
fn video_codecs() -> Vec<RTCRtpCodecParameters> {
    let feedback = [
        ("goog-remb", ""),
        ("ccm", "fir"),
        ("nack", ""),
        ("nack", "pli"),
    ]
    .into_iter()
    .map(|(typ, parameter)| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    })
    .collect();
    vec![
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: MediaKind::Video.clock_rate(),
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: feedback,
            },
            payload_type: 96,
        },
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_RTX.to_owned(),
                clock_rate: MediaKind::Video.clock_rate(),
                channels: 0,
                sdp_fmtp_line: "apt=96".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: RTX_PT,
        },
    ]
}

/// Opus and VP8 only: what the SFU forwards. Without transcoding, every
/// participant has to speak the same codecs, and these two every browser does.
/// Video also has RTX: the SFU answers a subscriber's NACK with an RTX packet
/// (its own SSRC and sequence numbers, the original sequence number first in
/// the payload) where the subscriber negotiated it; publishers are answered
/// without it (`Session::no_rtx_from_publishers`).
pub(crate) fn media_engine() -> Result<MediaEngine> {
    let mut media = MediaEngine::default();
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: MediaKind::Audio.clock_rate(),
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    for codec in video_codecs() {
        media.register_codec(codec, RtpCodecKind::Video)?;
    }
    // Browsers put each packet's audio level in the clear (RFC 6464): the SFU
    // reads it to tell who speaks, and forwards it to subscribers.
    media.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.to_owned(),
        },
        RtpCodecKind::Audio,
        None,
    )?;
    Ok(media)
}
