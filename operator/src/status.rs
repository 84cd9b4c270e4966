//! `status_from`: what a Room's status should say, given its Pod. Pure: no I/O, no clock.
//!
//! Phase: no Pod → `Pending`; Pod not ready → `Starting`; Pod ready with an IP →
//! `Ready` (endpoint `podIP:port`); Pod succeeded (the room ended itself: idle,
//! lifetime, closed) → `Ended`; Pod failed or unable to start → `Failed`; Room being
//! deleted → `Closing`. Failures become a `Ready=False` condition whose reason says why
//! (`ImagePullBackOff`, `Unschedulable`, `CrashLoopBackOff`, `PodFailed`, …).
//! Carried over from the old status: `restarts`, `podUid`, `startedAt`, `participants`;
//! the reconciler owns those.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt as _;
use rendezvous_crds::{Phase, Room, RoomStatus};

use crate::pod::media_port_of;

/// Container waiting reasons that mean the room will not start without help.
const FATAL_WAITING: [&str; 4] = [
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
];
/// Waiting reasons worth surfacing while the Pod may still recover.
const SLOW_WAITING: [&str; 2] = ["ErrImagePull", "ImagePullBackOff"];

/// One observation of the room: phase plus why.
struct Seen {
    phase: Phase,
    reason: &'static str,
    message: String,
}

fn waiting_reason(pod: &Pod) -> Option<(String, String)> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|cs| {
        let w = cs.state.as_ref()?.waiting.as_ref()?;
        Some((w.reason.clone()?, w.message.clone().unwrap_or_default()))
    })
}

fn pod_condition<'a>(
    pod: &'a Pod,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// `true` when the Pod's `Ready` condition is `True`.
pub fn pod_ready(pod: &Pod) -> bool {
    pod_condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

fn observe(pod: Option<&Pod>) -> Seen {
    let seen = |phase, reason, message: &str| Seen {
        phase,
        reason,
        message: message.to_owned(),
    };
    let Some(pod) = pod else {
        return seen(Phase::Pending, "PodMissing", "no room server Pod yet");
    };
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    match phase {
        Some("Succeeded") => return seen(Phase::Ended, "RoomEnded", "the room server ended"),
        Some("Failed") => {
            let why = pod
                .status
                .as_ref()
                .and_then(|s| s.reason.clone())
                .unwrap_or_default();
            return seen(
                Phase::Failed,
                "PodFailed",
                &format!("the room server Pod failed {why}"),
            );
        }
        _ => {}
    }
    if let Some((reason, message)) = waiting_reason(pod) {
        if let Some(r) = FATAL_WAITING.iter().find(|r| **r == reason) {
            return seen(Phase::Failed, *r, &message);
        }
        if let Some(r) = SLOW_WAITING.iter().find(|r| **r == reason) {
            return seen(Phase::Starting, *r, &message);
        }
    }
    if let Some(c) = pod_condition(pod, "PodScheduled") {
        if c.status == "False" && c.reason.as_deref() == Some("Unschedulable") {
            let msg = c.message.clone().unwrap_or_default();
            return seen(Phase::Starting, "Unschedulable", &msg);
        }
    }
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_ref());
    if pod_ready(pod) && ip.is_some() {
        return seen(
            Phase::Ready,
            "RoomReady",
            "the room server accepts participants",
        );
    }
    seen(
        Phase::Starting,
        "PodStarting",
        "the room server Pod is starting",
    )
}

/// The Room's status given its Pod (`None`: no Pod) and `port`, the room server's port.
pub fn status_from(room: &Room, pod: Option<&Pod>, port: u16) -> RoomStatus {
    let old = room.status.clone().unwrap_or_default();
    let mut seen = observe(pod);
    if room.metadata.deletion_timestamp.is_some() {
        seen.phase = Phase::Closing;
        seen.reason = "Deleting";
        seen.message = "the room is closing".into();
    }
    let endpoint = match (seen.phase, pod) {
        (Phase::Ready, Some(p)) => p
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_ref())
            .map(|ip| format!("{ip}:{port}")),
        _ => None,
    };
    let started_at = match (seen.phase, pod) {
        (Phase::Ready, Some(p)) if old.started_at.is_none() => {
            pod_condition(p, "Ready").and_then(|c| c.last_transition_time.clone())
        }
        _ => old.started_at.clone(),
    };
    let ready = seen.phase == Phase::Ready;
    let since = pod
        .and_then(|p| pod_condition(p, "Ready"))
        .and_then(|c| c.last_transition_time.clone())
        .or_else(|| room.metadata.creation_timestamp.clone())
        .unwrap_or(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    let condition = Condition {
        type_: "Ready".into(),
        status: if ready { "True" } else { "False" }.into(),
        reason: seen.reason.into(),
        message: seen.message,
        observed_generation: room.metadata.generation,
        last_transition_time: keep_transition_time(&old, ready, since),
    };
    RoomStatus {
        phase: seen.phase,
        endpoint,
        media_port: pod.and_then(media_port_of),
        participants: old.participants,
        started_at,
        observed_generation: room.metadata.generation,
        restarts: old.restarts,
        pod_uid: pod.and_then(|p| p.uid()).or(old.pod_uid),
        conditions: vec![condition],
    }
}

/// A condition's `lastTransitionTime` moves only when its status flips.
fn keep_transition_time(old: &RoomStatus, ready: bool, since: Time) -> Time {
    let want = if ready { "True" } else { "False" };
    old.conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == want)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(since)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::tests::mk_room;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateWaiting, ContainerStatus, PodCondition, PodStatus,
    };

    fn mk_pod(phase: &str, ready: bool, ip: Option<&str>) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.uid = Some("pod-uid".into());
        pod.status = Some(PodStatus {
            phase: Some(phase.into()),
            pod_ip: ip.map(Into::into),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        });
        pod
    }

    fn waiting(reason: &str) -> Pod {
        let mut pod = mk_pod("Pending", false, None);
        pod.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            name: "room".into(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.into()),
                    message: Some("details".into()),
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]);
        pod
    }

    fn ready_reason(s: &RoomStatus) -> (&str, &str) {
        (
            s.conditions[0].status.as_str(),
            s.conditions[0].reason.as_str(),
        )
    }

    #[test]
    fn no_pod_is_pending() {
        let s = status_from(&mk_room("r"), None, 8090);
        assert_eq!(s.phase, Phase::Pending);
        assert_eq!(s.observed_generation, Some(1));
    }

    #[test]
    fn running_but_not_ready_is_starting() {
        let s = status_from(
            &mk_room("r"),
            Some(&mk_pod("Running", false, Some("10.0.0.7"))),
            8090,
        );
        assert_eq!(s.phase, Phase::Starting);
        assert_eq!(s.endpoint, None);
    }

    #[test]
    fn ready_pod_gives_endpoint() {
        let s = status_from(
            &mk_room("r"),
            Some(&mk_pod("Running", true, Some("10.0.0.7"))),
            8090,
        );
        assert_eq!(s.phase, Phase::Ready);
        assert_eq!(s.endpoint.as_deref(), Some("10.0.0.7:8090"));
        assert_eq!(ready_reason(&s), ("True", "RoomReady"));
        assert_eq!(s.pod_uid.as_deref(), Some("pod-uid"));
        // The test Pod has no spec, so no media port to report.
        assert_eq!(s.media_port, None);
    }

    #[test]
    fn media_port_comes_from_the_pod_spec() {
        let room = mk_room("r");
        let mut pod = crate::pod::desired_pod(&room, &crate::pod::PodConfig::test(), 8091);
        pod.status = mk_pod("Pending", false, None).status;
        assert_eq!(status_from(&room, Some(&pod), 8090).media_port, Some(8091));
        assert_eq!(status_from(&room, None, 8090).media_port, None);
    }

    #[test]
    fn image_pull_trouble_is_reported_while_starting() {
        let s = status_from(&mk_room("r"), Some(&waiting("ImagePullBackOff")), 8090);
        assert_eq!(s.phase, Phase::Starting);
        assert_eq!(ready_reason(&s), ("False", "ImagePullBackOff"));
    }

    #[test]
    fn crash_loop_fails_the_room() {
        let s = status_from(&mk_room("r"), Some(&waiting("CrashLoopBackOff")), 8090);
        assert_eq!(s.phase, Phase::Failed);
        assert_eq!(ready_reason(&s), ("False", "CrashLoopBackOff"));
    }

    #[test]
    fn unschedulable_is_reported() {
        let mut pod = mk_pod("Pending", false, None);
        pod.status.as_mut().unwrap().conditions = Some(vec![PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some("Unschedulable".into()),
            message: Some("0/3 nodes are available".into()),
            ..PodCondition::default()
        }]);
        let s = status_from(&mk_room("r"), Some(&pod), 8090);
        assert_eq!(ready_reason(&s), ("False", "Unschedulable"));
        assert_eq!(s.conditions[0].message, "0/3 nodes are available");
    }

    #[test]
    fn exited_pod_ends_and_failed_pod_fails() {
        let s = status_from(&mk_room("r"), Some(&mk_pod("Succeeded", false, None)), 8090);
        assert_eq!(s.phase, Phase::Ended);
        let s = status_from(&mk_room("r"), Some(&mk_pod("Failed", false, None)), 8090);
        assert_eq!((s.phase, ready_reason(&s).1), (Phase::Failed, "PodFailed"));
    }

    #[test]
    fn deleting_room_is_closing_and_restarts_carry_over() {
        let mut room = mk_room("r");
        room.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        room.status = Some(RoomStatus {
            restarts: 2,
            ..RoomStatus::default()
        });
        let s = status_from(
            &room,
            Some(&mk_pod("Running", true, Some("10.0.0.7"))),
            8090,
        );
        assert_eq!((s.phase, s.restarts), (Phase::Closing, 2));
    }

    #[test]
    fn transition_time_stays_while_status_holds() {
        let mut room = mk_room("r");
        let first = status_from(&room, None, 8090);
        room.status = Some(first.clone());
        let again = status_from(&room, Some(&mk_pod("Running", false, None)), 8090);
        assert_eq!(
            first.conditions[0].last_transition_time,
            again.conditions[0].last_transition_time
        );
    }
}
