//! WebRTC signalling through the chat core: grants, hand-off, the way back.

use super::*;
use crate::media::{MediaInput, MediaKind, MediaOutput};
use crate::protocol::{MediaEndReason, TrackKind};

fn media_of(out: &[Output]) -> Vec<MediaInput> {
    out.iter()
        .filter_map(|o| match o {
            Output::Media(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn offer() -> ClientMessage {
    ClientMessage::Offer {
        sdp: "v=0".into(),
        screen: vec![],
    }
}

#[test]
fn an_offer_goes_to_the_media_core_with_the_grants() {
    let mut h = Harness::new();
    h.join(1, "alice", Grants::participant());
    let out = h.msg(1, offer());
    assert_eq!(
        media_of(&out),
        vec![MediaInput::Offer {
            participant: "alice".into(),
            sdp: "v=0".into(),
            publish: true,
            subscribe: true,
            screen: vec![],
        }]
    );
}

#[test]
fn signalling_needs_publish_or_subscribe() {
    let mut h = Harness::new();
    let chat_only = Grants {
        publish: false,
        subscribe: false,
        ..Grants::participant()
    };
    h.join(1, "eve", chat_only);
    let out = h.msg(1, offer());
    assert!(media_of(&out).is_empty());
    assert!(out.contains(&Output::Rejected {
        code: ErrorCode::Forbidden
    }));
}

#[test]
fn the_media_session_ends_with_the_connection_and_only_if_there_was_one() {
    let mut h = Harness::new();
    h.join(1, "alice", Grants::participant());
    h.join(2, "bob", Grants::participant());
    h.msg(1, offer());
    let leave = MediaInput::Leave {
        participant: "alice".into(),
    };
    let out = h.input(Input::Disconnected {
        conn: ConnId(1),
        clean: false,
    });
    assert_eq!(media_of(&out), vec![leave]);
    // Bob never offered: nothing for the media core.
    let out = h.input(Input::Disconnected {
        conn: ConnId(2),
        clean: true,
    });
    assert!(media_of(&out).is_empty());
}

#[test]
fn leaving_and_kicks_end_the_media_session() {
    let mut h = Harness::new();
    h.join(1, "alice", Grants::participant());
    h.join(2, "mod", Grants::creator());
    h.join(3, "bob", Grants::participant());
    h.msg(1, offer());
    h.msg(3, offer());
    let out = h.msg(1, ClientMessage::Leave {});
    assert_eq!(
        media_of(&out),
        vec![MediaInput::Leave {
            participant: "alice".into()
        }]
    );
    let kick = ClientMessage::Kick {
        participant_id: "bob".into(),
        reason: None,
    };
    let out = h.msg(2, kick);
    assert_eq!(
        media_of(&out),
        vec![MediaInput::Leave {
            participant: "bob".into()
        }]
    );
}

#[test]
fn stop_media_ends_the_session_and_keeps_the_member() {
    let mut h = Harness::new();
    h.join(1, "alice", Grants::participant());
    h.msg(1, offer());
    let out = h.msg(1, ClientMessage::StopMedia {});
    assert_eq!(
        media_of(&out),
        vec![MediaInput::Leave {
            participant: "alice".into()
        }]
    );
    // Still in the room (no `left`, the socket stays), and nothing more to end.
    assert!(out.iter().all(|o| !matches!(o, Output::Close { .. })));
    assert!(media_of(&h.msg(1, ClientMessage::StopMedia {})).is_empty());
    // An offer starts a new session.
    assert!(matches!(
        media_of(&h.msg(1, offer())).as_slice(),
        [MediaInput::Offer { .. }]
    ));
}

#[test]
fn media_events_reach_their_participant_only() {
    let mut h = Harness::new();
    h.join(1, "alice", Grants::participant());
    h.join(2, "bob", Grants::participant());
    let out = h.input(Input::Media(MediaOutput::Track {
        participant: "bob".into(),
        owner: "alice".into(),
        kind: MediaKind::Video,
        mid: "2".into(),
        stream_id: "p1".into(),
        screen: false,
        added: true,
    }));
    let [Output::Send { conn, frame }] = out.as_slice() else {
        panic!("one frame for bob: {out:?}");
    };
    assert_eq!(*conn, ConnId(2));
    assert!(frame.contains(r#""type":"track""#) && frame.contains(r#""participantId":"alice""#));
    assert!(frame.contains(r#""removed":false"#));

    let out = h.input(Input::Media(MediaOutput::Refused {
        participant: "alice".into(),
        message: "bad sdp".into(),
    }));
    assert!(out.contains(&Output::Rejected {
        code: ErrorCode::NegotiationFailed
    }));
}

fn mute_media(target: &str, kind: TrackKind, muted: bool) -> ClientMessage {
    ClientMessage::MuteMedia {
        participant_id: target.into(),
        kind,
        muted,
    }
}

#[test]
fn a_moderators_media_mute_reaches_the_media_core_and_everyone() {
    let mut h = Harness::new();
    h.join(1, "mod", Grants::creator());
    h.join(2, "bob", Grants::participant());
    // Bob may not mute anyone.
    let out = h.msg(2, mute_media("mod", TrackKind::Audio, true));
    assert!(media_of(&out).is_empty());
    assert!(out.contains(&Output::Rejected {
        code: ErrorCode::Forbidden
    }));

    let out = h.msg(1, mute_media("bob", TrackKind::Audio, true));
    assert_eq!(
        media_of(&out),
        vec![MediaInput::Mute {
            participant: "bob".into(),
            kind: MediaKind::Audio,
            muted: true
        }]
    );
    assert!(events(&out).contains(&ServerEvent::MediaMuted {
        participant_id: "bob".into(),
        kind: TrackKind::Audio,
        muted: true,
        by: "mod".into(),
    }));
    // Again: nothing changes, nothing is said.
    assert!(h
        .msg(1, mute_media("bob", TrackKind::Audio, true))
        .is_empty());
    let out = h.msg(1, mute_media("nobody", TrackKind::Video, true));
    assert!(events(&out).iter().any(|e| matches!(
        e,
        ServerEvent::Error {
            code: ErrorCode::NotFound,
            ..
        }
    )));

    // Bob comes back: still muted, and the welcome says so.
    h.input(Input::Disconnected {
        conn: ConnId(2),
        clean: false,
    });
    let out = h.join(3, "bob", Grants::participant());
    let welcome = events(&out)
        .into_iter()
        .find_map(|e| match e {
            ServerEvent::Welcome(w) => Some(w),
            _ => None,
        })
        .unwrap();
    let bob = welcome.participants.iter().find(|p| p.id == "bob").unwrap();
    assert!(bob.audio_muted && !bob.video_muted);
}

#[test]
fn media_state_is_broadcast_when_it_changes_and_reset_when_the_session_ends() {
    let mut h = Harness::new();
    h.join(1, "alice", Grants::participant());
    h.join(2, "bob", Grants::participant());
    h.msg(1, offer());
    let state = ClientMessage::MediaState {
        audio: true,
        video: false,
        screen: false,
    };
    let out = h.msg(1, state.clone());
    assert_eq!(
        events(&out),
        vec![ServerEvent::MediaState {
            participant_id: "alice".into(),
            audio: true,
            video: false,
            screen: false,
        }]
    );
    assert!(h.msg(1, state).is_empty(), "no change, no event");
    let out = h.msg(1, ClientMessage::StopMedia {});
    assert!(events(&out).contains(&ServerEvent::MediaState {
        participant_id: "alice".into(),
        audio: false,
        video: false,
        screen: false,
    }));

    // Without `publish` there is nothing to say.
    let viewer = Grants {
        publish: false,
        ..Grants::participant()
    };
    h.join(3, "carol", viewer);
    let out = h.msg(
        3,
        ClientMessage::MediaState {
            audio: true,
            video: true,
            screen: true,
        },
    );
    assert!(out.contains(&Output::Rejected {
        code: ErrorCode::Forbidden
    }));
}

#[test]
fn a_session_the_media_core_ended_is_reported_to_its_participant() {
    let mut h = Harness::new();
    h.join(1, "alice", Grants::participant());
    h.join(2, "bob", Grants::participant());
    h.msg(1, offer());
    h.msg(
        1,
        ClientMessage::MediaState {
            audio: true,
            video: true,
            screen: false,
        },
    );
    let out = h.input(Input::Media(MediaOutput::Ended {
        participant: "alice".into(),
    }));
    let to_alice: Vec<_> = out
        .iter()
        .filter(|o| matches!(o, Output::Send { conn, .. } if *conn == ConnId(1)))
        .collect();
    assert_eq!(to_alice.len(), 1, "{out:?}");
    assert!(events(&out).contains(&ServerEvent::MediaEnded {
        reason: MediaEndReason::IceFailed
    }));
    assert!(events(&out).contains(&ServerEvent::MediaState {
        participant_id: "alice".into(),
        audio: false,
        video: false,
        screen: false,
    }));
    // The session is gone: leaving asks the media core for nothing more.
    assert!(media_of(&h.msg(1, ClientMessage::StopMedia {})).is_empty());
}

#[test]
fn sdp_may_outgrow_a_chat_frame_and_nothing_else_may() {
    use crate::conn::{max_sdp_bytes, text_input};
    let max = 16 * 1024;
    let big_sdp = format!("v=0\r\n{}", "a=x\r\n".repeat(6000));
    let offer = serde_json::json!({"type": "offer", "sdp": big_sdp}).to_string();
    assert!(offer.len() > max && offer.len() < max_sdp_bytes(max));
    assert!(matches!(
        text_input(ConnId(1), &offer, max),
        Input::Message {
            msg: ClientMessage::Offer { .. },
            ..
        }
    ));
    let chat = serde_json::json!({"type": "send", "text": big_sdp}).to_string();
    assert!(matches!(
        text_input(ConnId(1), &chat, max),
        Input::Rejected {
            code: ErrorCode::FrameTooLarge,
            ..
        }
    ));
    let huge = serde_json::json!({"type": "answer", "sdp": big_sdp.repeat(3)}).to_string();
    assert!(matches!(
        text_input(ConnId(1), &huge, max),
        Input::Rejected {
            code: ErrorCode::FrameTooLarge,
            ..
        }
    ));
}

#[test]
fn watch_reaches_the_media_core_only_with_a_session_and_within_bounds() {
    let mut h = Harness::new();
    h.join(1, "alice", Grants::participant());
    let watch = |video: Option<Vec<String>>| ClientMessage::Watch {
        video,
        heights: Default::default(),
    };
    assert!(
        media_of(&h.msg(1, watch(Some(vec![])))).is_empty(),
        "no session yet"
    );
    h.msg(1, offer());
    assert_eq!(
        media_of(&h.msg(1, watch(Some(vec!["bob".into()])))),
        vec![MediaInput::Watch {
            participant: "alice".into(),
            video: Some(vec!["bob".into()]),
            heights: Default::default(),
        }]
    );
    let many = (0..=crate::protocol::MAX_WATCHED)
        .map(|i| i.to_string())
        .collect();
    let out = h.msg(1, watch(Some(many)));
    assert!(media_of(&out).is_empty());
    assert!(events(&out).iter().any(|e| matches!(
        e,
        ServerEvent::Error {
            code: ErrorCode::LimitReached,
            ..
        }
    )));
    // The tile heights are bounded alike, and pass through within the bound.
    let heights = |n: usize| -> std::collections::BTreeMap<String, u32> {
        (0..n).map(|i| (i.to_string(), 180)).collect()
    };
    let sized = |n| ClientMessage::Watch {
        video: None,
        heights: heights(n),
    };
    let out = h.msg(1, sized(crate::protocol::MAX_WATCHED + 1));
    assert!(media_of(&out).is_empty());
    assert!(events(&out).iter().any(|e| matches!(
        e,
        ServerEvent::Error {
            code: ErrorCode::LimitReached,
            ..
        }
    )));
    assert_eq!(
        media_of(&h.msg(1, sized(2))),
        vec![MediaInput::Watch {
            participant: "alice".into(),
            video: None,
            heights: heights(2),
        }]
    );
}
