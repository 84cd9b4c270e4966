//! `deploy/rbac/` applied to the real cluster: each account can do what it needs and no more.

mod common;

use common::{client, kubectl};

/// `kubectl auth can-i` as service account `sa`. `resource` is `TYPE`, `TYPE/NAME`, or
/// `TYPE/status` / `TYPE/finalizers` for those subresources (which `can-i` would
/// otherwise read as an object named "status").
fn can(ns: &str, sa: &str, verb: &str, resource: &str, in_ns: Option<&str>) -> bool {
    let user = format!("--as=system:serviceaccount:{ns}:{sa}");
    let (resource, sub) = match resource.rsplit_once('/') {
        Some((r, s @ ("status" | "finalizers"))) => (r, Some(format!("--subresource={s}"))),
        _ => (resource, None),
    };
    let mut a = vec!["auth", "can-i", verb, resource, user.as_str()];
    if let Some(s) = &sub {
        a.push(s);
    }
    let n;
    if let Some(x) = in_ns {
        n = format!("--namespace={x}");
        a.push(&n);
    }
    let out = kubectl(&a, None);
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

#[tokio::test]
async fn each_account_has_least_privilege() {
    let Some(client) = client().await else { return };
    let ns = common::namespace(&client, "op-rbac").await;
    for f in ["rbac/operator.yaml", "rbac/router.yaml"] {
        common::apply_deploy_file(&ns, f);
    }
    let op = "rendezvous-operator";
    let other = Some("default");
    for (verb, res) in [
        ("watch", "rooms.rendezvous.dev"),
        ("patch", "rooms.rendezvous.dev/status"),
        ("create", "pods"),
        ("delete", "pods"),
        ("update", "rooms.rendezvous.dev/finalizers"),
    ] {
        assert!(
            can(&ns, op, verb, res, other),
            "operator should {verb} {res}"
        );
    }
    assert!(can(
        &ns,
        op,
        "update",
        "leases/rendezvous-operator",
        Some(&ns)
    ));
    for (verb, res, at) in [
        ("delete", "secrets", other),
        ("get", "secrets", other),
        ("create", "deployments", other),
        ("update", "leases/other", Some(ns.as_str())),
        ("update", "leases/rendezvous-operator", other),
        ("delete", "nodes", None),
    ] {
        assert!(
            !can(&ns, op, verb, res, at),
            "operator must not {verb} {res}"
        );
    }
    let r = "rendezvous-router";
    let mine = Some(ns.as_str());
    for verb in ["create", "delete", "watch", "list", "get", "patch"] {
        assert!(
            can(&ns, r, verb, "rooms.rendezvous.dev", mine),
            "router should {verb} rooms"
        );
    }
    for (verb, res, at) in [
        ("get", "pods", mine),
        ("delete", "pods", mine),
        ("patch", "rooms.rendezvous.dev/status", mine),
        ("create", "rooms.rendezvous.dev", other),
        ("get", "secrets", mine),
    ] {
        assert!(!can(&ns, r, verb, res, at), "router must not {verb} {res}");
    }
    let _ = kubectl(&["delete", "clusterrolebinding", op], None);
    common::delete_namespace(&client, &ns).await;
}
