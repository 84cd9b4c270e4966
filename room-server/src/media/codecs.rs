//! The codecs the SFU speaks.

use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::sdp::extmap::AUDIO_LEVEL_URI;
use rtc::shared::error::Result;

use super::MediaKind;

/// Opus and VP8 only: what the SFU forwards. Without transcoding, every
/// participant has to speak the same codecs, and these two every browser does.
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
    media.register_codec(
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
        RtpCodecKind::Video,
    )?;
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
