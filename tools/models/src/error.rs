//! What can go wrong when a model is asked for something.

/// A model call that did not produce a usable result.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The provider cannot do what was asked (a capability or option it lacks).
    #[error("{provider} cannot {what}")]
    Unsupported {
        /// The provider's id.
        provider: String,
        /// What was asked of it.
        what: String,
    },
    /// The request itself is wrong (an empty prompt, a size out of range); retrying won't help.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The model answered, but not in the shape asked for (JSON that doesn't fit the schema).
    #[error("the model's answer does not fit: {0}")]
    InvalidOutput(String),
    /// The provider refused the request for good (a key it does not take, a model it does
    /// not have); the message says what to change.
    #[error("{0}")]
    Rejected(String),
    /// The provider is not there (a missing program, a refused connection); may be retried.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider took longer than allowed; may be retried.
    #[error("the provider did not answer within {seconds:.0} s")]
    Timeout {
        /// The limit that passed.
        seconds: f64,
    },
    /// A local file operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Paid calls came to nothing (answers outside the schema, then a failure): the failure,
    /// and what the calls cost, which belongs in the ledger all the same.
    #[error("{failure}")]
    Paid {
        /// Why nothing came of them.
        failure: Box<ModelError>,
        /// What was paid, model by model.
        wasted: Vec<crate::types::Wasted>,
    },
}

impl ModelError {
    /// Whether trying the same request again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ModelError::Paid { failure, .. } => failure.is_transient(),
            other => matches!(
                other,
                ModelError::Unavailable(_) | ModelError::Timeout { .. } | ModelError::Io(_)
            ),
        }
    }

    /// `failure`, carrying what `wasted` paid for when anything was (a failure that cost
    /// nothing stays as it is).
    pub fn with_wasted(failure: ModelError, wasted: Vec<crate::types::Wasted>) -> ModelError {
        match wasted.is_empty() {
            true => failure,
            false => ModelError::Paid {
                failure: Box::new(failure),
                wasted,
            },
        }
    }

    /// What the failed calls cost, model by model, when they were paid for.
    pub fn wasted(&self) -> &[crate::types::Wasted] {
        match self {
            ModelError::Paid { wasted, .. } => wasted,
            _ => &[],
        }
    }
}
