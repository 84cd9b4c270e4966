//! `deploy/` applied to the real cluster in a namespace that enforces the `restricted`
//! Pod Security Standard: every Deployment's Pods are admitted and become available.

mod common;

use common::{client, eventually, kubectl};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;

#[tokio::test]
async fn the_deployments_are_admitted_and_become_available() {
    let Some(client) = client().await else { return };
    let ns = common::namespace(&client, "deploy").await;
    for f in ["rbac/operator.yaml", "rbac/router.yaml", "rendezvous.yaml"] {
        common::apply_deploy_file(&ns, f);
    }
    // The Secrets the README tells an installer to create.
    for args in [
        [
            "rendezvous-db",
            "--from-literal=url=postgres://rendezvous@db/rendezvous",
        ],
        [
            "rendezvous-router",
            "--from-literal=router.secret=eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg=",
        ],
    ] {
        let out = kubectl(
            &["-n", &ns, "create", "secret", "generic", args[0], args[1]],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    for name in [
        "rendezvous-users",
        "rendezvous-router",
        "rendezvous-operator",
    ] {
        eventually(60, &format!("{name} to be available"), || async {
            let d = deployments.get(name).await.ok()?;
            let want = d.spec.as_ref()?.replicas?;
            (d.status?.available_replicas? == want).then_some(())
        })
        .await;
    }
    // Pods of every component carry the restricted settings the namespace demands
    // (they would not exist otherwise); the users Pods also hold no API token.
    let out = kubectl(
        &[
            "-n",
            &ns,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/component=users",
            "-o",
            "jsonpath={.items[*].spec.automountServiceAccountToken}",
        ],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "false false");
    common::delete_namespace(&client, &ns).await;
}
