//! The `Room` custom resource (`rooms.rendezvous.dev`, `v1alpha1`): one live room.
//!
//! This crate owns the Rust types and the CRD YAML generated from them
//! ([`crd_yaml`], written to `crds/rooms.rendezvous.dev.yaml` by `rendezvous crdgen`).
//! The operator reconciles `Room`s into Pods and writes [`RoomStatus`]; the router
//! creates and deletes `Room`s and reads their status. Validation the API server
//! enforces (enums, bounds, immutability) lives in the schema, so a bad `Room` is
//! refused at `kubectl apply`, not discovered by the operator.
#![forbid(unsafe_code)]

pub mod limits;

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

/// The desired room. `kind`, `creator` and `creatorName` never change after creation.
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
    printcolumn(name = "Media", type_ = "integer", json_path = ".status.mediaPort"),
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
    /// What people see in the room's header: 1 to 100 characters, no control
    /// characters (`limits::TITLE_MAX_CHARS`, `limits::TITLE_PATTERN`).
    #[schemars(length(min = 1, max = limits::TITLE_MAX_CHARS))]
    #[schemars(regex(pattern = limits::TITLE_PATTERN))]
    pub title: String,
    /// User id of whoever opened the room. Immutable.
    #[schemars(length(min = 1, max = 128))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "creator is immutable"}]))]
    pub creator: String,
    /// The creator's display name when the room was opened (the `name` of their access
    /// token), for the invite page: up to 64 characters
    /// (`limits::CREATOR_NAME_MAX_CHARS`), no control characters. Empty in a Room
    /// written without it (Rooms from before this field, or by hand), which then shows
    /// no name. Immutable.
    #[serde(default)]
    #[schemars(length(max = limits::CREATOR_NAME_MAX_CHARS))]
    #[schemars(regex(pattern = limits::CREATOR_NAME_PATTERN))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "creatorName is immutable"}]))]
    pub creator_name: String,
    /// People in the room at once: 2 to 1000, default 50 (`limits::MAX_PARTICIPANTS`).
    #[serde(default = "limits::default_max_participants")]
    #[schemars(range(min = limits::MAX_PARTICIPANTS_MIN, max = limits::MAX_PARTICIPANTS_MAX))]
    pub max_participants: u32,
    /// Seconds with nobody inside before the room ends: 1 s to 1 day, default 5 min
    /// (`limits::IDLE_TIMEOUT_SECS`).
    #[serde(default = "limits::default_idle_timeout")]
    #[schemars(range(min = limits::IDLE_TIMEOUT_MIN, max = limits::IDLE_TIMEOUT_MAX))]
    pub idle_timeout: u32,
    /// Seconds the room may live at most: 10 s to 7 days, default 8 h
    /// (`limits::MAX_DURATION_SECS`).
    #[serde(default = "limits::default_max_duration")]
    #[schemars(range(min = limits::MAX_DURATION_MIN, max = limits::MAX_DURATION_MAX))]
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
    /// UDP port of the room's media (WebRTC), once its Pod exists: the node's port
    /// with `--media-host-ports`, else the port on the Pod's IP.
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

/// Write [`crd_yaml`] as `rooms.rendezvous.dev.yaml` into `dir` (created if missing);
/// the path written. The one writer of the committed file (`rendezvous crdgen` and the
/// `crdgen` binary of this crate); the freshness test only reads it.
pub fn write_crd(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("rooms.rendezvous.dev.yaml");
    std::fs::write(&path, crd_yaml())?;
    Ok(path)
}

/// Whether the file at `path` is exactly what [`crd_yaml`] generates. Only reads.
pub fn is_fresh(path: &std::path::Path) -> std::io::Result<bool> {
    Ok(std::fs::read_to_string(path)? == crd_yaml())
}

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
        assert_eq!(
            cols,
            ["Kind", "Creator", "Phase", "Media", "Participants", "Age"]
        );
        assert!(v.subresources.as_ref().unwrap().status.is_some());
    }

    #[test]
    fn schema_carries_immutability_and_bounds() {
        let yaml = crd_yaml();
        assert!(yaml.contains("kind is immutable"));
        assert!(yaml.contains("creator is immutable"));
        assert!(yaml.contains("creatorName is immutable"));
        assert!(yaml.contains("maximum: 1000"));
        assert!(yaml.contains("- chat"));
    }

    /// The committed YAML must be what the types generate. This test only compares:
    /// regenerating is `cargo run -p rendezvous-crds --bin crdgen` (or
    /// `rendezvous crdgen`), so no setting can make a stale file pass.
    #[test]
    fn committed_crd_is_fresh() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(CRD_FILE);
        assert!(
            is_fresh(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            "{} is stale: run `cargo run -p rendezvous-crds --bin crdgen` \
             (or `rendezvous crdgen`) from the workspace root",
            path.display()
        );
    }

    /// The old check rewrote the file and passed whenever `UPDATE_CRDS` was set, so a
    /// stale file could never fail a run that had it set. Now nothing reads it.
    #[test]
    fn freshness_check_never_writes_even_with_update_crds_set() {
        let dir = std::env::temp_dir().join(format!("crds-fresh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rooms.rendezvous.dev.yaml");
        std::fs::write(&path, "stale: true\n").unwrap();
        // Edition 2021: `set_var` is safe; no other test reads this variable.
        std::env::set_var("UPDATE_CRDS", "1");
        assert!(!is_fresh(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "stale: true\n");
        assert!(is_fresh(&write_crd(&dir).unwrap()).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
