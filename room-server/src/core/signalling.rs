//! WebRTC signalling: the room's side of the media core.
//!
//! The chat core checks who may signal (grants `publish` or `subscribe`, the
//! rate limit) and hands requests on as [`Output::Media`]; the media core's
//! answers, offers and track announcements come back as [`Input::Media`] and go
//! to the participant's connection like any other event. A participant's media
//! session ends with their connection: a returning participant offers again.
//!
//! [`Input::Media`]: super::Input::Media

use std::collections::BTreeMap;
use std::time::Instant;

use super::{ConnId, Output, Room};
use crate::media::{MediaInput, MediaKind, MediaOutput};
use crate::protocol::{
    ClientMessage, ErrorCode, MediaEndReason, Sending, ServerEvent, TrackKind, MAX_SCREEN_MIDS,
    MAX_WATCHED,
};

impl Room {
    /// Pass an `offer`, `answer` or `ice_candidate` on to the media core.
    pub(super) fn signal(&mut self, id: String, msg: ClientMessage) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        let input = match msg {
            ClientMessage::Offer { sdp, mut screen } => {
                member.media = true;
                screen.truncate(MAX_SCREEN_MIDS);
                MediaInput::Offer {
                    participant: id,
                    sdp,
                    publish: member.grants.publish,
                    subscribe: member.grants.subscribe,
                    screen,
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

    /// End a member's media session, if they have one, and tell everyone they
    /// send nothing now.
    pub(super) fn end_media(&mut self, now: Instant, id: &str) {
        self.drop_media_session(id);
        self.set_sending(now, id, Sending::default());
    }

    /// End a member's media session, if they have one (a member leaving for
    /// good: `left` says the rest).
    pub(super) fn drop_media_session(&mut self, id: &str) {
        if let Some(member) = self.members.get_mut(id) {
            if std::mem::take(&mut member.media) {
                self.out.push_back(Output::Media(MediaInput::Leave {
                    participant: id.to_owned(),
                }));
            }
        }
    }

    /// Whose video a member wants (`watch`), for the media core.
    pub(super) fn watch(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: String,
        video: Option<Vec<String>>,
        heights: BTreeMap<String, u32>,
    ) {
        if video.as_ref().is_some_and(|v| v.len() > MAX_WATCHED) || heights.len() > MAX_WATCHED {
            let text = format!("`watch` lists at most {MAX_WATCHED} participants");
            return self.error(now, conn, ErrorCode::LimitReached, text, None);
        }
        let has_session = self.members.get(&id).is_some_and(|m| m.media);
        if has_session {
            self.out.push_back(Output::Media(MediaInput::Watch {
                participant: id,
                video,
                heights,
            }));
        }
    }

    /// Record what a member sends and tell everyone, when it changed.
    pub(super) fn set_sending(&mut self, now: Instant, id: &str, sending: Sending) {
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        if member.sending == sending {
            return;
        }
        member.sending = sending;
        let event = ServerEvent::MediaState {
            participant_id: id.to_owned(),
            audio: sending.audio,
            video: sending.video,
            screen: sending.screen,
        };
        self.broadcast(now, event);
    }

    /// A moderator's `mute_media`: the media core stops (or resumes) forwarding,
    /// and the standing keeps it across the target's reconnects.
    pub(super) fn mute_media(
        &mut self,
        now: Instant,
        conn: ConnId,
        by: String,
        target: String,
        kind: TrackKind,
        muted: bool,
    ) {
        let Some(member) = self.members.get_mut(&target) else {
            let text = format!("no participant `{target}`");
            return self.error(now, conn, ErrorCode::NotFound, text, None);
        };
        let (flag, media_kind) = match kind {
            TrackKind::Audio => (&mut member.standing.audio_muted, MediaKind::Audio),
            TrackKind::Video => (&mut member.standing.video_muted, MediaKind::Video),
        };
        if *flag == muted {
            return;
        }
        *flag = muted;
        self.out.push_back(Output::Media(MediaInput::Mute {
            participant: target.clone(),
            kind: media_kind,
            muted,
        }));
        let event = ServerEvent::MediaMuted {
            participant_id: target,
            kind,
            muted,
            by,
        };
        self.broadcast(now, event);
    }

    /// A signalling event of the media core for one participant.
    pub(super) fn media_event(&mut self, now: Instant, out: MediaOutput) {
        let (participant, event) = match out {
            MediaOutput::Transmit { .. } | MediaOutput::Hangup { .. } => return,
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
                screen,
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
                    screen,
                    removed: !added,
                };
                (participant, event)
            }
            MediaOutput::ActiveSpeaker { participant } => {
                let event = ServerEvent::ActiveSpeaker {
                    participant_id: participant,
                };
                self.broadcast_ephemeral(now, event);
                return;
            }
            MediaOutput::Ended { participant } => {
                let Some(member) = self.members.get_mut(&participant) else {
                    return;
                };
                member.media = false;
                let conn = member.conn;
                if let Some(conn) = conn {
                    let reason = MediaEndReason::IceFailed;
                    self.send(now, conn, ServerEvent::MediaEnded { reason });
                }
                self.set_sending(now, &participant, Sending::default());
                return;
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
