//! The operator's one error type; every variant has a bounded metric label.

/// Why a reconcile (or the operator) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the Room has no {0}")]
    MissingField(&'static str),
    #[error("leader election: {0}")]
    Lease(String),
    #[error("the Room changed since it was read; reconciling again")]
    Stale,
    /// A task that must run as long as the operator does ended by itself.
    #[error("{0} ended unexpectedly")]
    TaskEnded(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this is a refused write from a stale read (retried soon, not an alarm).
    pub fn is_stale(&self) -> bool {
        matches!(self, Self::Stale)
    }

    /// A short, fixed label for the `errors` metric (never user data).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::MissingField(_) => "missing_field",
            Self::Lease(_) => "lease",
            Self::Stale => "stale",
            Self::TaskEnded(_) => "task_ended",
        }
    }
}
