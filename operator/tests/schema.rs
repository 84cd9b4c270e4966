//! The Room schema on the real API server: a minimal Room gets the router's defaults,
//! and values outside `rendezvous_crds::limits` are refused (server-side dry runs, so
//! no operator is needed and nothing is left behind).

mod common;

use common::{client, kubectl};
use kube::api::{Api, PostParams};
use rendezvous_crds::limits::*;
use rendezvous_crds::Room;
use serde_json::{json, Value};

#[tokio::test]
async fn a_minimal_room_gets_the_defaults() {
    let Some(admin) = client().await else { return };
    let ns = common::namespace(&admin, "schema-min").await;
    let yaml = format!(
        "apiVersion: rendezvous.dev/v1alpha1\nkind: Room\nmetadata:\n  name: tea\n  namespace: {ns}\n\
         spec:\n  kind: chat\n  title: Tea\n  creator: ada\n"
    );
    let out = kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let room = Api::<Room>::namespaced(admin.clone(), &ns)
        .get("tea")
        .await
        .unwrap();
    assert_eq!(room.spec.max_participants, DEFAULT_MAX_PARTICIPANTS);
    assert_eq!(room.spec.idle_timeout, DEFAULT_IDLE_TIMEOUT_SECS);
    assert_eq!(room.spec.max_duration, DEFAULT_MAX_DURATION_SECS);
    // No creatorName: the API server stores an empty one, which is then as immutable
    // as a given one.
    let out = kubectl(&["-n", &ns, "get", "room", "tea", "-o", "json"], None);
    let stored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stored["spec"]["creatorName"], json!(""), "{stored}");
    common::delete_namespace(&admin, &ns).await;
}

/// Create `spec` as a Room, dry run: the API server's answer.
async fn try_spec(api: &Api<Room>, spec: Value) -> Result<(), String> {
    let room: Room = serde_json::from_value(json!({
        "apiVersion": "rendezvous.dev/v1alpha1", "kind": "Room",
        "metadata": {"name": "probe"}, "spec": spec
    }))
    .unwrap();
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    api.create(&dry, &room)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn rooms_outside_the_limits_are_refused_and_the_bounds_accepted() {
    let Some(admin) = client().await else { return };
    let ns = common::namespace(&admin, "schema-bounds").await;
    let api: Api<Room> = Api::namespaced(admin.clone(), &ns);
    let base = json!({"kind": "chat", "title": "Tea", "creator": "ada"});
    let with = |field: &str, v: Value| {
        let mut s = base.clone();
        s[field] = v;
        s
    };
    let long = "é".repeat(TITLE_MAX_CHARS as usize);
    for (field, lo, hi) in [
        (
            "maxParticipants",
            *MAX_PARTICIPANTS.start(),
            *MAX_PARTICIPANTS.end(),
        ),
        (
            "idleTimeout",
            *IDLE_TIMEOUT_SECS.start(),
            *IDLE_TIMEOUT_SECS.end(),
        ),
        (
            "maxDuration",
            *MAX_DURATION_SECS.start(),
            *MAX_DURATION_SECS.end(),
        ),
    ] {
        for ok in [lo, hi] {
            try_spec(&api, with(field, json!(ok)))
                .await
                .unwrap_or_else(|e| panic!("{field}={ok} refused: {e}"));
        }
        for bad in [lo - 1, hi + 1] {
            let err = try_spec(&api, with(field, json!(bad)))
                .await
                .expect_err(&format!("{field}={bad} accepted"));
            assert!(err.contains(field), "{field}={bad}: {err}");
        }
    }
    // Characters, not bytes: 100 two-byte characters are fine, 101 are not.
    try_spec(&api, with("title", json!(long))).await.unwrap();
    let err = try_spec(&api, with("title", json!(format!("{long}x"))))
        .await
        .expect_err("a long title accepted");
    assert!(err.contains("title"), "{err}");
    for bad in ["", "tea\ntime", "bell\u{7}"] {
        let err = try_spec(&api, with("title", json!(bad)))
            .await
            .expect_err(&format!("title {bad:?} accepted"));
        assert!(err.contains("title"), "{bad:?}: {err}");
    }
    // The creator's name: optional (may be empty), a display name's length at most.
    let name = "é".repeat(CREATOR_NAME_MAX_CHARS as usize);
    for ok in [json!(""), json!(name)] {
        try_spec(&api, with("creatorName", ok)).await.unwrap();
    }
    for bad in [format!("{name}x"), "Ada\nLovelace".into()] {
        let err = try_spec(&api, with("creatorName", json!(bad)))
            .await
            .expect_err(&format!("creatorName {bad:?} accepted"));
        assert!(err.contains("creatorName"), "{bad:?}: {err}");
    }
    common::delete_namespace(&admin, &ns).await;
}
