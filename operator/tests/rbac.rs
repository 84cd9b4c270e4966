//! `deploy/rbac/` applied to the real cluster: each account can do what it needs and no more.

mod common;

use common::{client, kubectl};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};

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
    let mine = Some(ns.as_str());
    let other = Some("default");
    for (verb, res) in [
        ("watch", "rooms.rendezvous.dev"),
        ("patch", "rooms.rendezvous.dev"),
        ("delete", "rooms.rendezvous.dev"),
        ("patch", "rooms.rendezvous.dev/status"),
        ("create", "pods"),
        ("patch", "pods"),
        ("delete", "pods"),
        ("update", "rooms.rendezvous.dev/finalizers"),
        ("create", "leases"),
        ("update", "leases/rendezvous-operator"),
    ] {
        assert!(
            can(&ns, op, verb, res, mine),
            "operator should {verb} {res}"
        );
    }
    // Everything the operator may do, it may do in its own namespace only.
    for (verb, res, at) in [
        ("create", "pods", other),
        ("delete", "pods", other),
        ("watch", "rooms.rendezvous.dev", other),
        ("patch", "rooms.rendezvous.dev/status", other),
        ("create", "pods", None),
        ("list", "pods", None),
        ("delete", "secrets", mine),
        ("get", "secrets", mine),
        ("create", "deployments", mine),
        ("update", "rooms.rendezvous.dev", mine),
        ("update", "leases/other", mine),
        ("update", "leases/rendezvous-operator", other),
        ("get", "customresourcedefinitions", None),
        ("delete", "nodes", None),
    ] {
        assert!(
            !can(&ns, op, verb, res, at),
            "operator must not {verb} {res} in {at:?}"
        );
    }
    let r = "rendezvous-router";
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
    common::delete_namespace(&client, &ns).await;
}

/// The operator's own client (its ServiceAccount, impersonated) can make its room Pod
/// at home and nowhere else: RBAC refuses it before admission looks at the Pod.
#[tokio::test]
async fn the_operator_cannot_create_a_pod_in_another_namespace() {
    let Some(admin) = client().await else { return };
    let home = common::namespace(&admin, "op-home").await;
    let away = common::namespace(&admin, "op-away").await;
    let op = common::operator_client(&home, None).await;
    let room = rendezvous_crds::Room::new(
        "r1",
        serde_json::from_value(serde_json::json!({
            "kind": "chat", "title": "Tea", "creator": "ada"
        }))
        .unwrap(),
    );
    let cfg = rendezvous_operator::pod::PodConfig::test();
    let pod = rendezvous_operator::pod::desired_pod(&room, &cfg, 8091);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    Api::<Pod>::namespaced(op.clone(), &home)
        .create(&dry, &pod)
        .await
        .expect("the operator makes room Pods in its namespace");
    let refused = Api::<Pod>::namespaced(op.clone(), &away)
        .create(&dry, &pod)
        .await
        .expect_err("a room Pod in another namespace");
    let user = common::operator_user(&home);
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403
            && s.message.contains(&user) && s.message.contains("cannot create resource \"pods\"")),
        "{refused:?}"
    );
    // Nor anything cluster-wide.
    let all = Api::<Pod>::all(op).list(&Default::default()).await;
    assert!(
        matches!(&all, Err(kube::Error::Api(s)) if s.code == 403),
        "{all:?}"
    );
    common::delete_namespace(&admin, &home).await;
    common::delete_namespace(&admin, &away).await;
}
