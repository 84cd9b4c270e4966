//! The operator's one error type; every variant has a bounded metric label.

/// Why a reconcile (or the operator) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("the Room has no {0}")]
    MissingField(&'static str),
    #[error("leader election: {0}")]
    Lease(String),
    #[error("the Room changed since it was read; reconciling again")]
    Stale,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this is (or wraps) a refused write from a stale read.
    pub fn is_stale(&self) -> bool {
        use kube::runtime::finalizer::Error as F;
        match self {
            Self::Stale => true,
            Self::Finalizer(f) => matches!(
                f.as_ref(),
                F::ApplyFailed(Self::Stale) | F::CleanupFailed(Self::Stale)
            ),
            _ => false,
        }
    }

    /// A short, fixed label for the `errors` metric (never user data).
    pub fn metric_label(&self) -> &'static str {
        if self.is_stale() {
            return "stale";
        }
        match self {
            Self::Kube(_) => "kube",
            Self::Finalizer(_) => "finalizer",
            Self::MissingField(_) => "missing_field",
            Self::Lease(_) => "lease",
            Self::Stale => "stale",
        }
    }
}
