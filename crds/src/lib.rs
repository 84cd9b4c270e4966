//! The `Room` custom resource (`rooms.rendezvous.dev`, `v1alpha1`): one live room.
//!
//! This crate owns the Rust types and the CRD YAML generated from them
//! ([`crd_yaml`], written to `crds/rooms.rendezvous.dev.yaml` by `rendezvous crdgen`).
//! The operator reconciles `Room`s into Pods and writes [`RoomStatus`]; the router
//! creates and deletes `Room`s and reads their status. Validation the API server
//! enforces (enums, bounds, immutability) lives in the schema, so a bad `Room` is
//! refused at `kubectl apply`, not discovered by the operator.
#![forbid(unsafe_code)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, CustomResourceExt as _};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every Rendezvous resource.
pub const GROUP: &str = "rendezvous.dev";
/// The finalizer the operator puts on each Room to close it gracefully.
pub const FINALIZER: &str = "rendezvous.dev/close";
/// Label on everything that belongs to a room: the Room's name.
pub const ROOM_LABEL: &str = "rendezvous.dev/room";

/// What a room carries.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    Chat,
    Video,
    Both,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Video => "video",
            Self::Both => "both",
        }
    }
}

/// The desired room. `kind` and `creator` never change after creation.
// Each `printcolumn(...)` repeats `type_ = "string"`: clippy takes that for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "rendezvous.dev",
    version = "v1alpha1",
    kind = "Room",
    namespaced,
    status = "RoomStatus",
    shortname = "room",
    derive = "PartialEq",
    doc = "A live Rendezvous room: one room-server Pod, reconciled by the operator.",
    printcolumn(name = "Kind", type_ = "string", json_path = ".spec.kind"),
    printcolumn(name = "Creator", type_ = "string", json_path = ".spec.creator"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Participants",
        type_ = "integer",
        json_path = ".status.participants"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RoomSpec {
    /// chat, video or both. Immutable.
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "kind is immutable"}]))]
    pub kind: RoomKind,
    /// What people see in the room's header.
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// User id of whoever opened the room. Immutable.
    #[schemars(length(min = 1, max = 128))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "creator is immutable"}]))]
    pub creator: String,
    /// Participants at once (1..=1000).
    #[schemars(range(min = 1, max = 1000))]
    pub max_participants: u32,
    /// Seconds with nobody inside before the room ends (10 s .. 1 day).
    #[schemars(range(min = 10, max = 86400))]
    pub idle_timeout: u32,
    /// Seconds the room may live at most (60 s .. 7 days).
    #[schemars(range(min = 60, max = 604800))]
    pub max_duration: u32,
}

/// Where a room is in its life.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Phase {
    /// Accepted; no Pod yet.
    #[default]
    Pending,
    /// The Pod exists and is not ready yet.
    Starting,
    /// The room server answers at `endpoint`.
    Ready,
    /// Deleted; the room is saying goodbye.
    Closing,
    /// The room server ended on its own (idle, lifetime, closed).
    Ended,
    /// The room cannot run (see conditions).
    Failed,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Self::Pending,
        Self::Starting,
        Self::Ready,
        Self::Closing,
        Self::Ended,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Starting => "Starting",
            Self::Ready => "Ready",
            Self::Closing => "Closing",
            Self::Ended => "Ended",
            Self::Failed => "Failed",
        }
    }
}

/// What the operator last saw of the room.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomStatus {
    pub phase: Phase,
    /// `podIP:port` of the room server, once ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// UDP port for media, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_port: Option<u16>,
    /// People inside, as last reported.
    #[serde(default)]
    pub participants: u32,
    /// When the room server became ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods the operator had to replace (deleted or failed) for this room.
    #[serde(default)]
    pub restarts: u32,
    /// UID of the Pod this status describes (to tell a replaced Pod from the same one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// `Ready`, `PodScheduled`, `Failed`… in the standard Kubernetes shape.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// The CRD as YAML, exactly as committed in `crds/rooms.rendezvous.dev.yaml`.
pub fn crd_yaml() -> String {
    serde_yaml::to_string(&Room::crd()).expect("the CRD serialises")
}

/// Where the committed CRD lives, relative to the workspace root.
pub const CRD_FILE: &str = "crds/rooms.rendezvous.dev.yaml";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_has_names_columns_and_status() {
        let crd = Room::crd();
        assert_eq!(crd.metadata.name.as_deref(), Some("rooms.rendezvous.dev"));
        assert_eq!(crd.spec.names.short_names, Some(vec!["room".to_owned()]));
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        let cols: Vec<_> = v
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(cols, ["Kind", "Creator", "Phase", "Participants", "Age"]);
        assert!(v.subresources.as_ref().unwrap().status.is_some());
    }

    #[test]
    fn schema_carries_immutability_and_bounds() {
        let yaml = crd_yaml();
        assert!(yaml.contains("kind is immutable"));
        assert!(yaml.contains("creator is immutable"));
        assert!(yaml.contains("maximum: 1000"));
        assert!(yaml.contains("- chat"));
    }

    /// The committed YAML must be what the types generate; `UPDATE_CRDS=1` rewrites it.
    #[test]
    fn committed_crd_is_fresh() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(CRD_FILE);
        let want = crd_yaml();
        if std::env::var_os("UPDATE_CRDS").is_some() {
            std::fs::write(&path, &want).expect("write CRD");
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale: run `UPDATE_CRDS=1 cargo test -p rendezvous-crds` (or `rendezvous crdgen`)",
            path.display()
        );
    }
}
