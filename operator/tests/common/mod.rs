//! Shared harness of the tests against a real API server (`KUBECONFIG`).
//!
//! Without `KUBECONFIG` a test skips with a loud message, except under `CI=true`,
//! where it fails. Each test gets its own namespace and runs the operator in-process,
//! with exactly the permissions of `deploy/rbac/operator.yaml` (its client impersonates
//! the operator's ServiceAccount in that namespace).
#![allow(dead_code)]

pub mod proxy;

use std::time::Duration;

use clap::Parser;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, CustomResourceExt as _};
use rendezvous_crds::Room;
use tokio::sync::oneshot;

/// A client for the cluster in `KUBECONFIG`, or `None` (skip) outside CI.
pub async fn client() -> Option<Client> {
    if std::env::var_os("KUBECONFIG").is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("KUBECONFIG is not set: this test needs the real control plane (scripts/k8s-env up NAME)");
        }
        eprintln!("\n*** SKIPPED: KUBECONFIG is not set; run `eval \"$(scripts/k8s-env up dev)\"` first ***\n");
        return None;
    }
    let client = Client::try_default().await.expect("client from KUBECONFIG");
    install_crd(&client).await;
    Some(client)
}

/// Apply the CRD (server-side apply: idempotent across tests) and wait until served.
pub async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("rendezvous-tests").force();
    crds.patch("rooms.rendezvous.dev", &params, &Patch::Apply(Room::crd()))
        .await
        .expect("apply the CRD");
    for _ in 0..100 {
        let rooms: Api<Room> = Api::all(client.clone());
        if rooms.list(&Default::default()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the Room CRD was not served in time");
}

/// A fresh namespace `prefix-XXXX` that enforces the `restricted` Pod Security
/// Standard.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    // The API server's PodSecurity admission refuses any Pod in here that does not
    // meet the `restricted` profile, so every test also checks the room Pod's spec.
    namespace_with(
        client,
        prefix,
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await
}

/// A fresh namespace `prefix-XXXX` with these labels.
pub async fn namespace_with(client: &Client, prefix: &str, labels: &[(&str, &str)]) -> String {
    let name = format!("{prefix}-{:08x}", rand_u32());
    let nss: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.clone());
    ns.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    nss.create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

pub async fn delete_namespace(client: &Client, name: &str) {
    let nss: Api<Namespace> = Api::all(client.clone());
    let _ = nss.delete(name, &DeleteParams::background()).await;
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish() as u32
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: rendezvous_operator::Args,
}

/// Operator arguments for tests: this namespace, quick close and lease timings.
pub fn args(ns: &str, identity: &str, extra: &[&str]) -> rendezvous_operator::Args {
    let mut argv = vec![
        "op".to_owned(),
        format!("--namespace={ns}"),
        "--listen=127.0.0.1:0".into(),
        "--room-image=rendezvous:test".into(),
        "--close-grace=1s".into(),
        "--lease-duration=3s".into(),
        "--lease-renew-deadline=2s".into(),
        "--lease-renew=500ms".into(),
        format!("--identity={identity}"),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    Cli::parse_from(argv).args
}

/// The operator's ServiceAccount in `ns`, as a Kubernetes user name.
pub fn operator_user(ns: &str) -> String {
    format!("system:serviceaccount:{ns}:rendezvous-operator")
}

/// Apply `deploy/rbac/operator.yaml` in `ns` and return a client that acts as the
/// operator's ServiceAccount there (impersonation: the admin credentials of
/// `KUBECONFIG` authenticate, the API server authorizes as the ServiceAccount).
/// `url`: another address for the same API server (a [`proxy::Proxy`]).
pub async fn operator_client(ns: &str, url: Option<&str>) -> Client {
    apply_deploy_file(ns, "rbac/operator.yaml");
    let mut cfg = kube::Config::infer().await.expect("kubeconfig");
    cfg.auth_info.impersonate = Some(operator_user(ns));
    cfg.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".into(),
    ]);
    if let Some(url) = url {
        cfg.cluster_url = url.parse().expect("proxy URL");
    }
    Client::try_from(cfg).expect("impersonating client")
}

/// An operator running in this process until the returned handle is stopped.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Where its `/healthz` and `/metrics` answer.
    pub addr: std::net::SocketAddr,
}

impl Operator {
    /// Run the operator of `args.namespace` as its ServiceAccount.
    pub async fn spawn(_admin: &Client, args: rendezvous_operator::Args) -> Self {
        let ns = args
            .namespace
            .clone()
            .expect("tests run the operator in a namespace");
        let client = operator_client(&ns, None).await;
        Self::spawn_as(client, args).await
    }

    /// Run the operator with this client.
    pub async fn spawn_as(client: Client, args: rendezvous_operator::Args) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the metrics listener");
        let addr = listener.local_addr().expect("listener address");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(rendezvous_operator::run_with(
            args,
            client,
            listener,
            async {
                let _ = rx.await;
            },
        ));
        Self {
            stop: Some(tx),
            task,
            addr,
        }
    }

    /// `rendezvous_operator_leader` from its `/metrics`: whether it acts right now.
    pub async fn is_leader(&self) -> bool {
        let body = reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body");
        body.lines().any(|l| l == "rendezvous_operator_leader 1")
    }

    /// Shut down and wait for a clean exit.
    pub async fn stop(mut self) {
        let _ = self.stop.take().expect("stopped once").send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("operator stops in time")
            .expect("operator task")
            .expect("operator exits cleanly");
    }
}

/// Poll `f` every 100 ms until it returns `Some`, or panic after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run `kubectl ARGS` (with `KUBECONFIG` from the environment) feeding `stdin`.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("kubectl output")
}

/// A Room manifest.
pub fn room_yaml(ns: &str, name: &str, max: u32) -> String {
    format!(
        "apiVersion: rendezvous.dev/v1alpha1\nkind: Room\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  kind: chat\n  title: Tea\n  creator: ada\n  maxParticipants: {max}\n  idleTimeout: 300\n  maxDuration: 3600\n"
    )
}

/// End a test: delete its Rooms while the operator still runs (so finalizers do not
/// strand the namespace), stop the operator, delete the namespace.
pub async fn finish(client: &Client, ns: &str, op: Operator) {
    let rooms: Api<Room> = Api::namespaced(client.clone(), ns);
    let _ = rooms
        .delete_collection(&DeleteParams::default(), &Default::default())
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while rooms
            .list(&Default::default())
            .await
            .map(|l| !l.items.is_empty())
            .unwrap_or(false)
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    op.stop().await;
    delete_namespace(client, ns).await;
}

/// `kubectl apply` the file `deploy/PATH` with its namespace `rendezvous` replaced by `ns`.
pub fn apply_deploy_file(ns: &str, path: &str) {
    let file = format!("{}/../deploy/{path}", env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let yaml = yaml.replace("namespace: rendezvous", &format!("namespace: {ns}"));
    let out = kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert!(
        out.status.success(),
        "{path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
