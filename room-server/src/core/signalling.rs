//! WebRTC signalling: the room's side of the media core.
//!
//! The chat core checks who may signal (grants `publish` or `subscribe`, the
//! rate limit) and hands requests on as [`Output::Media`]; the media core's
//! answers, offers and track announcements come back as [`Input::Media`] and go
//! to the participant's connection like any other event. A participant's media
//! session ends with their connection: a returning participant offers again.
//!
//! [`Input::Media`]: super::Input::Media

use std::time::Instant;

use super::{Output, Room};
use crate::media::{MediaInput, MediaKind, MediaOutput};
use crate::protocol::{ClientMessage, ErrorCode, ServerEvent, TrackKind};

impl Room {
    /// Pass an `offer`, `answer` or `ice_candidate` on to the media core.
    pub(super) fn signal(&mut self, id: String, msg: ClientMessage) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        let input = match msg {
            ClientMessage::Offer { sdp } => {
                member.media = true;
                MediaInput::Offer {
                    participant: id,
                    sdp,
                    publish: member.grants.publish,
                    subscribe: member.grants.subscribe,
                }
            }
            ClientMessage::Answer { sdp } => MediaInput::Answer {
                participant: id,
                sdp,
            },
            ClientMessage::IceCandidate { candidate, sdp_mid } => MediaInput::Candidate {
                participant: id,
                candidate,
                sdp_mid,
            },
            other => unreachable!("not a signalling message: {}", other.kind()),
        };
        self.out.push_back(Output::Media(input));
    }

    /// End a member's media session, if they have one.
    pub(super) fn end_media(&mut self, id: &str) {
        if let Some(member) = self.members.get_mut(id) {
            if std::mem::take(&mut member.media) {
                self.out.push_back(Output::Media(MediaInput::Leave {
                    participant: id.to_owned(),
                }));
            }
        }
    }

    /// A signalling event of the media core for one participant.
    pub(super) fn media_event(&mut self, now: Instant, out: MediaOutput) {
        let (participant, event) = match out {
            MediaOutput::Transmit { .. } => return,
            MediaOutput::Answer { participant, sdp } => (participant, ServerEvent::Answer { sdp }),
            MediaOutput::Offer { participant, sdp } => (participant, ServerEvent::Offer { sdp }),
            MediaOutput::Candidate {
                participant,
                candidate,
                sdp_mid,
            } => (
                participant,
                ServerEvent::IceCandidate { candidate, sdp_mid },
            ),
            MediaOutput::Track {
                participant,
                owner,
                kind,
                mid,
                stream_id,
                added,
            } => {
                let kind = match kind {
                    MediaKind::Audio => TrackKind::Audio,
                    MediaKind::Video => TrackKind::Video,
                };
                let event = ServerEvent::Track {
                    participant_id: owner,
                    kind,
                    mid,
                    stream_id,
                    removed: !added,
                };
                (participant, event)
            }
            MediaOutput::Refused {
                participant,
                message,
            } => {
                let conn = self.members.get(&participant).and_then(|m| m.conn);
                if let Some(conn) = conn {
                    self.error(now, conn, ErrorCode::NegotiationFailed, message, None);
                }
                return;
            }
        };
        if let Some(conn) = self.members.get(&participant).and_then(|m| m.conn) {
            self.send(now, conn, event);
        }
    }
}
