//! Password hashing: argon2id with OWASP's recommended parameters, off the async
//! runtime, and bounded.
//!
//! Each hash holds 19 MiB for its whole run, so unbounded concurrency turns a burst of
//! log-ins into a memory spike (50 at once took a process from 110 MiB to 1 GiB) while
//! adding no throughput beyond one hash per core. [`Hasher`] admits at most `bound`
//! hashes at once; a request that cannot get a slot within `wait` is refused with
//! [`Error::Busy`] (503 + `Retry-After`) instead of queueing without end.
//!
//! Hashes run on `bound` dedicated threads rather than tokio's blocking pool: malloc
//! keeps a freed 19 MiB buffer resident in the arena of the thread that used it, so
//! hashes spread over the blocking pool's many threads still grew the process by
//! 19 MiB per thread ever used (414 MiB peak with only two at once), and even on few
//! threads small allocations fragmented the freed space. Each worker owns one argon2
//! buffer and hashes in it (`hash_password_into_with_memory`), so the memory is
//! `bound` × 19 MiB, allocated once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// What a refused client is told to wait: one hash takes tens of milliseconds, so a
/// second is enough for a burst to clear, and short enough not to lose the user.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters")
}

fn internal(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{what}: {e}"))
}

/// The hash of `password` under `salt` into `blocks` (the worker's reused memory,
/// grown if `a` needs more), as `len` output bytes.
fn compute(
    a: &Argon2,
    password: &[u8],
    salt: argon2::password_hash::Salt<'_>,
    len: usize,
    blocks: &mut Vec<Block>,
) -> Result<Output> {
    let mut salt_buf = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_buf)
        .map_err(|e| internal("salt", e))?;
    let need = a.params().block_count();
    if blocks.len() < need {
        blocks.resize(need, Block::default());
    }
    Output::init_with(len, |out| {
        a.hash_password_into_with_memory(password, salt, out, &mut blocks[..need])
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| internal("hashing password", e))
}

fn hash_now(password: &[u8], blocks: &mut Vec<Block>) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let params = params();
    let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = compute(&a, password, salt.as_salt(), len, blocks)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(|e| internal("params", e))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc` (whatever its argon2 parameters).
fn verify_now(password: &[u8], phc: &str, blocks: &mut Vec<Block>) -> Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| internal("stored hash", e))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(internal("stored hash", "no salt or hash"));
    };
    let algorithm =
        Algorithm::try_from(parsed.algorithm).map_err(|e| internal("stored hash", e))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| internal("stored hash", e))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| internal("stored hash", e))?;
    let a = Argon2::new(algorithm, version, params);
    let got = compute(&a, password, salt, expected.len(), blocks)?;
    // Output's equality is constant-time.
    Ok(got == expected)
}

/// Bounded argon2id hashing. Cheap to clone; clones share the bound.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

/// One hash to run on a worker thread, given the thread's argon2 memory; it carries
/// its slot's permit.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

struct Inner {
    slots: Arc<Semaphore>,
    /// Feeds the worker threads. Never more than `bound` jobs are in it or running
    /// (each holds a permit), so the channel needs no bound of its own.
    jobs: std::sync::mpsc::Sender<Job>,
    wait: Duration,
    /// A hash of a fixed password with the real parameters, made once on first use:
    /// unknown logins verify against it so timing does not reveal which accounts exist.
    dummy: OnceLock<String>,
    running: AtomicUsize,
    peak: AtomicUsize,
    in_flight: prometheus::IntGauge,
    busy: prometheus::IntCounter,
}

/// Counts one running hash for as long as it lives (also when the hash panics).
struct Running<'a>(&'a Inner);

impl<'a> Running<'a> {
    fn enter(inner: &'a Inner) -> Self {
        let now = inner.running.fetch_add(1, Ordering::SeqCst) + 1;
        inner.peak.fetch_max(now, Ordering::SeqCst);
        inner.in_flight.inc();
        Self(inner)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.in_flight.dec();
    }
}

impl Hasher {
    /// At most `bound` hashes at once; waiting longer than `wait` for a slot is `Busy`.
    /// Registers `rendezvous_users_password_hashes_in_flight` and
    /// `rendezvous_users_password_hash_busy_total` on `registry`.
    pub fn new(bound: usize, wait: Duration, registry: &prometheus::Registry) -> Self {
        let in_flight = prometheus::IntGauge::new(
            "rendezvous_users_password_hashes_in_flight",
            "Password hashes (argon2id, 19 MiB each) running now",
        )
        .expect("valid metric");
        let busy = prometheus::IntCounter::new(
            "rendezvous_users_password_hash_busy_total",
            "Requests refused with 503 busy: no password-hashing slot in time",
        )
        .expect("valid metric");
        // A second registration (several apps on one registry in tests) is harmless.
        let _ = registry.register(Box::new(in_flight.clone()));
        let _ = registry.register(Box::new(busy.clone()));
        let bound = bound.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..bound {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || worker(&queue))
                .expect("spawning a password-hashing thread");
        }
        Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(bound)),
                jobs,
                wait,
                dummy: OnceLock::new(),
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                in_flight,
                busy,
            }),
        }
    }

    /// Hashes running now.
    pub fn in_flight(&self) -> usize {
        self.inner.running.load(Ordering::SeqCst)
    }

    /// The most hashes that ever ran at once (a test hook for the bound).
    pub fn peak_in_flight(&self) -> usize {
        self.inner.peak.load(Ordering::SeqCst)
    }

    /// Hash a password into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move |_, blocks| hash_now(password.as_bytes(), blocks))
            .await
    }

    /// Check a password against a PHC string. With `None` (unknown user) the dummy
    /// hash is checked, at the same cost as a real one.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool> {
        self.run(move |inner, blocks| {
            let phc = match &phc {
                Some(p) => p.as_str(),
                None => inner.dummy.get_or_init(|| {
                    hash_now(b"dummy password for timing", blocks).expect("hashing a constant")
                }),
            };
            verify_now(password.as_bytes(), phc, blocks)
        })
        .await
    }

    /// Run `f` on a worker thread once a slot is free. The permit moves into the job:
    /// a client that hangs up cannot free a slot whose hash still runs.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner, &mut Vec<Block>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let acquire = self.inner.slots.clone().acquire_owned();
        let Ok(permit) = tokio::time::timeout(self.inner.wait, acquire).await else {
            self.inner.busy.inc();
            return Err(Error::Busy(RETRY_AFTER));
        };
        let permit = permit.expect("the semaphore is never closed");
        let inner = self.inner.clone();
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |blocks| {
            let _permit = permit;
            let out = {
                let _running = Running::enter(&inner);
                f(&inner, blocks)
            };
            let _ = done.send(out);
        });
        self.inner
            .jobs
            .send(job)
            .map_err(|_| Error::Internal(anyhow::anyhow!("password-hashing threads are gone")))?;
        result
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("a password hash panicked")))?
    }
}

/// A worker thread: run jobs until every [`Hasher`] clone is gone, all in one argon2
/// buffer made on first use and kept (the reason for own threads: see the module
/// docs). A panicking job drops its reply (the caller gets `Internal`) without taking
/// the thread down.
fn worker(queue: &std::sync::Mutex<std::sync::mpsc::Receiver<Job>>) {
    let mut blocks = Vec::new();
    loop {
        let job = match queue.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut blocks)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_hasher(bound: usize, wait: Duration) -> Hasher {
        Hasher::new(bound, wait, &prometheus::Registry::new())
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let h = mk_hasher(2, Duration::from_secs(5));
        let phc = h.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(h
            .verify("correct horse".into(), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!h.verify("wrong horse".into(), Some(phc)).await.unwrap());
        assert!(!h.verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn hashes_match_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let std = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let mut blocks = Vec::new();
        // Stored before this module reused memory: still verifies.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = std.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_now(b"pw", &theirs, &mut blocks).unwrap());
        assert!(!verify_now(b"other", &theirs, &mut blocks).unwrap());
        // Ours verifies with the crate's own verifier.
        let ours = hash_now(b"pw", &mut blocks).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(std.verify_password(b"pw", &parsed).is_ok());
        assert!(std.verify_password(b"other", &parsed).is_err());
        // Other parameters (a weaker, older hash) verify too.
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        );
        let old = weak.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_now(b"pw", &old, &mut blocks).unwrap());
        assert_eq!(blocks.len(), 19 * 1024, "the buffer is reused, not shrunk");
    }

    #[tokio::test]
    async fn the_dummy_hash_is_made_once() {
        let h = mk_hasher(2, Duration::from_secs(5));
        assert!(!h.verify("a".into(), None).await.unwrap());
        let first = h.inner.dummy.get().cloned().expect("made on first use");
        assert!(!h.verify("b".into(), None).await.unwrap());
        assert_eq!(
            h.inner.dummy.get(),
            Some(&first),
            "the same dummy, not a new one"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_beyond_the_bound_wait_then_are_refused_busy() {
        let h = mk_hasher(1, Duration::from_millis(1));
        let results = join_hashes(&h, 8).await;
        assert!(h.peak_in_flight() == 1, "peak {}", h.peak_in_flight());
        assert!(results.iter().any(|r| r.is_ok()), "someone got a slot");
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(Error::Busy(d)) if *d == RETRY_AFTER)),
            "someone was refused"
        );
        assert_eq!(
            h.inner.busy.get() as usize,
            results.iter().filter(|r| r.is_err()).count()
        );
        assert_eq!(h.in_flight(), 0);
        assert_eq!(h.inner.in_flight.get(), 0);
    }

    async fn join_hashes(h: &Hasher, n: usize) -> Vec<Result<String>> {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let h = h.clone();
                tokio::spawn(async move { h.hash(format!("pw{i}")).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }
}
