//! `desired_pod`: the room-server Pod a Room should have. Pure: no I/O, no clock.
//!
//! The Pod runs `rendezvous room` (the image's entrypoint is the `rendezvous` binary)
//! with the Room's settings, under the restricted Pod Security Standard, and is owned
//! by the Room (controller owner reference), so garbage collection removes it with
//! the Room. `restartPolicy: Never`: a room's state lives in memory, so a restarted
//! container would be a different, empty room; the operator decides about
//! replacements (bounded by `--max-restarts`).
//!
//! Media (WebRTC over UDP, and ICE-TCP on the same port number for networks that
//! drop UDP) reaches the room one of two ways ([`MediaPorts`]): on a
//! fixed port of the Pod's own IP (the default; participants must reach the pod
//! network), or on a port of the node (`hostPort`) from a range, one per Room, at the
//! node's address. The room server advertises that address and port in its ICE
//! candidate (`RENDEZVOUS_ROOM_PUBLIC_IP` from the downward API).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, Pod, PodSecurityContext, PodSpec, Probe, ResourceRequirements,
    SeccompProfile, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource as _, ResourceExt as _};
use rendezvous_crds::{Room, ROOM_LABEL};

/// What every room Pod shares (from the operator's flags).
#[derive(Debug, Clone, PartialEq)]
pub struct PodConfig {
    pub image: String,
    pub image_pull_policy: String,
    /// TCP port the room server listens on inside the Pod.
    pub port: u16,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
    /// Where rooms fetch the router's room-token keys (`RENDEZVOUS_ROOM_TOKEN_JWKS_URL`).
    pub token_jwks_url: Option<String>,
    /// Seconds a room gets between SIGTERM (everyone gets `room_closed`) and SIGKILL.
    pub termination_grace_secs: i64,
    /// Where the room's media socket is reached.
    pub media: MediaPorts,
}

/// How participants reach a room's media (UDP) socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaPorts {
    /// Every room on this port of its own Pod IP: for a pod network participants can
    /// reach (a flat VPC network, the test cluster). Meets the restricted Pod Security
    /// Standard.
    PodNetwork(u16),
    /// Each Room gets a port of its node from `first..=last` (`hostPort`, the same
    /// number inside the Pod) and advertises the node's address (`status.hostIP`).
    /// The operator spreads Rooms over the range (least-used port first); the
    /// scheduler never puts two Pods with one host port on one node. `hostPort` is
    /// outside the baseline and restricted Pod Security Standards, so the Rooms'
    /// namespace must allow it.
    HostPorts { first: u16, last: u16 },
}

impl MediaPorts {
    /// `--media-host-ports` wins over `--room-media-port`.
    pub fn from_flags(room_media_port: u16, host_ports: Option<(u16, u16)>) -> Self {
        match host_ports {
            Some((first, last)) => Self::HostPorts { first, last },
            None => Self::PodNetwork(room_media_port),
        }
    }
}

/// Parse a host-port range `FIRST-LAST` (`--media-host-ports`).
pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("`{s}`: expected FIRST-LAST, for example 30000-30999"))?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{p}` is not a port (1-65535)"))
    };
    let (first, last) = (port(a)?, port(b)?);
    if first > last {
        return Err(format!("`{s}`: the first port is above the last"));
    }
    Ok((first, last))
}

impl PodConfig {
    pub fn test() -> Self {
        Self {
            image: "rendezvous:test".into(),
            image_pull_policy: "IfNotPresent".into(),
            port: 8090,
            cpu_request: "50m".into(),
            cpu_limit: "1".into(),
            memory_request: "32Mi".into(),
            memory_limit: "256Mi".into(),
            token_jwks_url: None,
            termination_grace_secs: 5,
            media: MediaPorts::PodNetwork(8091),
        }
    }
}

/// UID and GID the room server runs as (the distroless `nonroot` user).
const NON_ROOT: i64 = 65532;

/// The Pod's name for a Room.
pub fn pod_name(room: &Room) -> String {
    format!("room-{}", room.name_any())
}

/// Labels on a room's Pod.
pub fn pod_labels(room: &Room) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "rendezvous-room".into()),
        (
            "app.kubernetes.io/managed-by".into(),
            "rendezvous-operator".into(),
        ),
        (ROOM_LABEL.into(), room.name_any()),
    ])
}

fn quantities(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".into(), Quantity(cpu.into())),
        ("memory".into(), Quantity(memory.into())),
    ])
}

fn probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(1),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// Name of the room container's media port (`status.mediaPort` reads it back).
pub const MEDIA_PORT_NAME: &str = "media";

/// Name of the same port number for ICE-TCP.
pub const MEDIA_TCP_PORT_NAME: &str = "media-tcp";

fn args(room: &Room, cfg: &PodConfig, media_port: u16) -> Vec<String> {
    let s = &room.spec;
    vec![
        "room".into(),
        "--room-id".into(),
        room.name_any(),
        "--listen".into(),
        format!("0.0.0.0:{}", cfg.port),
        "--max-participants".into(),
        s.max_participants.to_string(),
        "--idle-timeout".into(),
        format!("{}s", s.idle_timeout),
        "--max-duration".into(),
        format!("{}s", s.max_duration),
        "--media-port".into(),
        media_port.to_string(),
    ]
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// An environment variable from the Pod's own status (the downward API).
fn env_from_status(name: &str, field: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn container(room: &Room, cfg: &PodConfig, media_port: u16) -> Container {
    let (host_port, address) = match cfg.media {
        MediaPorts::PodNetwork(_) => (None, "status.podIP"),
        MediaPorts::HostPorts { .. } => (Some(media_port.into()), "status.hostIP"),
    };
    let mut env = vec![
        env("RENDEZVOUS_LOG_FORMAT", "json"),
        env_from_status("RENDEZVOUS_ROOM_PUBLIC_IP", address),
    ];
    if let Some(url) = &cfg.token_jwks_url {
        env.push(self::env("RENDEZVOUS_ROOM_TOKEN_JWKS_URL", url));
    }
    Container {
        name: "room".into(),
        image: Some(cfg.image.clone()),
        image_pull_policy: Some(cfg.image_pull_policy.clone()),
        args: Some(args(room, cfg, media_port)),
        env: Some(env),
        ports: Some(vec![
            ContainerPort {
                name: Some("http".into()),
                container_port: cfg.port.into(),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some(MEDIA_PORT_NAME.into()),
                container_port: media_port.into(),
                host_port,
                protocol: Some("UDP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some(MEDIA_TCP_PORT_NAME.into()),
                container_port: media_port.into(),
                host_port,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
        ]),
        readiness_probe: Some(probe("/readyz", 2)),
        liveness_probe: Some(probe("/healthz", 10)),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&cfg.cpu_request, &cfg.memory_request)),
            limits: Some(quantities(&cfg.cpu_limit, &cfg.memory_limit)),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            seccomp_profile: Some(runtime_default()),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..SeccompProfile::default()
    }
}

/// The media port a room Pod was given (its `hostPort`, else its container port).
pub fn media_port_of(pod: &Pod) -> Option<u16> {
    let spec = pod.spec.as_ref()?;
    spec.containers.iter().find_map(|c| {
        let p = c
            .ports
            .as_ref()?
            .iter()
            .find(|p| p.name.as_deref() == Some(MEDIA_PORT_NAME))?;
        u16::try_from(p.host_port.unwrap_or(p.container_port)).ok()
    })
}

/// The Pod `room` should have, its media on `media_port` (the pod-network port, or
/// the host port [`crate::ports::MediaPortPool`] gave it). The caller applies it with
/// server-side apply.
pub fn desired_pod(room: &Room, cfg: &PodConfig, media_port: u16) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name(room)),
            namespace: room.namespace(),
            labels: Some(pod_labels(room)),
            owner_references: room.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![container(room, cfg, media_port)],
            restart_policy: Some("Never".into()),
            // The room server never talks to the API server.
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(cfg.termination_grace_secs),
            // Backstop for the room's own max-duration timer.
            active_deadline_seconds: Some(i64::from(room.spec.max_duration) + 60),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(NON_ROOT),
                run_as_group: Some(NON_ROOT),
                seccomp_profile: Some(runtime_default()),
                ..PodSecurityContext::default()
            }),
            ..PodSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rendezvous_crds::{RoomKind, RoomSpec};

    pub fn mk_room(name: &str) -> Room {
        let mut room = Room::new(
            name,
            RoomSpec {
                kind: RoomKind::Chat,
                title: "Tea at four".into(),
                creator: "ada".into(),
                creator_name: "Ada".into(),
                max_participants: 12,
                idle_timeout: 300,
                max_duration: 3600,
            },
        );
        room.metadata.namespace = Some("ns".into());
        room.metadata.uid = Some("uid-1".into());
        room.metadata.generation = Some(1);
        room
    }

    #[test]
    fn pod_is_owned_labelled_and_named_after_the_room() {
        let pod = desired_pod(&mk_room("r1"), &PodConfig::test(), 8091);
        assert_eq!(pod.metadata.name.as_deref(), Some("room-r1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Room", "r1"));
        assert_eq!(owner.controller, Some(true));
        assert_eq!(pod.metadata.labels.unwrap()[ROOM_LABEL], "r1");
    }

    #[test]
    fn pod_runs_the_room_with_its_settings() {
        let pod = desired_pod(&mk_room("r1"), &PodConfig::test(), 8091);
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let args = c.args.as_ref().unwrap().join(" ");
        assert_eq!(
            args,
            "room --room-id r1 --listen 0.0.0.0:8090 --max-participants 12 \
             --idle-timeout 300s --max-duration 3600s --media-port 8091"
        );
        let ready = c
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(ready.path.as_deref(), Some("/readyz"));
        let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["memory"], Quantity("256Mi".into()));
    }

    #[test]
    fn pod_meets_the_restricted_security_standard() {
        let pod = desired_pod(&mk_room("r1"), &PodConfig::test(), 8091);
        let spec = pod.spec.unwrap();
        let psc = spec.security_context.unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let sc = spec.containers[0].security_context.clone().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.automount_service_account_token, Some(false));
    }

    #[test]
    fn jwks_url_reaches_the_room_when_configured() {
        let cfg = PodConfig {
            token_jwks_url: Some("http://router/.well-known/room-jwks.json".into()),
            ..PodConfig::test()
        };
        let pod = desired_pod(&mk_room("r1"), &cfg, 8091);
        let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
        assert!(env
            .iter()
            .any(|e| e.name == "RENDEZVOUS_ROOM_TOKEN_JWKS_URL"));
    }

    fn env_of(pod: &Pod, name: &str) -> EnvVar {
        let c = &pod.spec.as_ref().unwrap().containers[0];
        c.env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == name)
            .unwrap()
            .clone()
    }

    fn field_of(e: &EnvVar) -> &str {
        &e.value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path
    }

    #[test]
    fn pod_network_media_is_the_pods_own_port_and_address() {
        let pod = desired_pod(&mk_room("r1"), &PodConfig::test(), 8091);
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let media = &c.ports.as_ref().unwrap()[1];
        assert_eq!(media.name.as_deref(), Some("media"));
        assert_eq!((media.container_port, media.host_port), (8091, None));
        assert_eq!(media.protocol.as_deref(), Some("UDP"));
        let tcp = &c.ports.as_ref().unwrap()[2];
        assert_eq!(tcp.name.as_deref(), Some("media-tcp"));
        assert_eq!((tcp.container_port, tcp.host_port), (8091, None));
        assert_eq!(tcp.protocol.as_deref(), Some("TCP"));
        assert_eq!(
            field_of(&env_of(&pod, "RENDEZVOUS_ROOM_PUBLIC_IP")),
            "status.podIP"
        );
        assert_eq!(media_port_of(&pod), Some(8091));
    }

    #[test]
    fn host_port_media_is_the_nodes_port_and_address() {
        let cfg = PodConfig {
            media: MediaPorts::HostPorts {
                first: 30000,
                last: 30009,
            },
            ..PodConfig::test()
        };
        let pod = desired_pod(&mk_room("r1"), &cfg, 30004);
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let media = &c.ports.as_ref().unwrap()[1];
        assert_eq!(
            (media.container_port, media.host_port),
            (30004, Some(30004))
        );
        // ICE-TCP on the same number of the node.
        let tcp = &c.ports.as_ref().unwrap()[2];
        assert_eq!(
            (tcp.container_port, tcp.host_port, tcp.protocol.as_deref()),
            (30004, Some(30004), Some("TCP"))
        );
        assert!(c
            .args
            .as_ref()
            .unwrap()
            .join(" ")
            .ends_with("--media-port 30004"));
        assert_eq!(
            field_of(&env_of(&pod, "RENDEZVOUS_ROOM_PUBLIC_IP")),
            "status.hostIP"
        );
        assert_eq!(media_port_of(&pod), Some(30004));
        assert_eq!(media_port_of(&Pod::default()), None);
    }

    #[test]
    fn port_ranges_parse_and_bad_ones_say_why() {
        assert_eq!(parse_port_range("30000-30999"), Ok((30000, 30999)));
        assert_eq!(parse_port_range("7000-7000"), Ok((7000, 7000)));
        for (bad, why) in [
            ("30000", "expected FIRST-LAST"),
            ("0-10", "not a port"),
            ("1-70000", "not a port"),
            ("a-b", "not a port"),
            ("9-8", "above the last"),
        ] {
            let err = parse_port_range(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
