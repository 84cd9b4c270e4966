//! A TCP proxy in front of the API server that a test can pause: while paused, bytes
//! it has read are held back in both directions (connections stay open, requests and
//! answers simply stall), which is what a client sees of a hung API server or a
//! network partition. TLS passes through untouched.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Bytes copied per read: one TLS record fits; bounds what the proxy holds per direction.
const CHUNK: usize = 16 * 1024;

/// Stops everything (listener, every connection) when dropped.
pub struct Proxy {
    addr: SocketAddr,
    paused: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listen on a free loopback port and forward every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (paused, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Owned here, so dropping the accept loop aborts every connection too.
            let mut conns = JoinSet::new();
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                conns.spawn(pump(dr, uw, rx.clone()));
                conns.spawn(pump(ur, dw, rx.clone()));
                while conns.try_join_next().is_some() {}
            }
        });
        Self { addr, paused, task }
    }

    /// `https://127.0.0.1:PORT`: the API server's URL through this proxy.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Hold everything back from now on.
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Let the held bytes and everything after them through.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if paused.wait_for(|p| !*p).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The API server's address (`host:port` of the kubeconfig's cluster URL).
pub async fn api_server_addr() -> SocketAddr {
    let cfg = kube::Config::infer().await.expect("kubeconfig");
    let host = cfg.cluster_url.host().expect("cluster URL host");
    let port = cfg.cluster_url.port_u16().unwrap_or(443);
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .expect("resolve the API server");
    addrs.next().expect("an API server address")
}
