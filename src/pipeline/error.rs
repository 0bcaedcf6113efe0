//! What goes wrong inside the nodes, and whether the graph should retry it.

use super::templates::TemplateError;
use crate::objects::ObjectError;
use crate::store::StoreError;
use montage_graph::NodeError;
use montage_models::ModelError;

/// A node's failure before the graph sees it. The graph only knows [`NodeError`]s, transient
/// (retried) or permanent; the conversion decides which, in one place.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The media store failed: a full disk or an unreachable bucket passes.
    #[error(transparent)]
    Objects(#[from] ObjectError),
    /// The database failed (the generation cache): a lost connection passes.
    #[error(transparent)]
    Database(#[from] StoreError),
    /// A prompt template does not render: retrying renders it the same way.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A model call failed while the node was `doing` something; retried when the model says
    /// the failure passes (a timeout, a rate limit).
    #[error("{doing}: {source}")]
    Model {
        /// What the node was doing, as the person reads it ("making music").
        doing: String,
        /// The model's failure.
        source: ModelError,
    },
    /// An earlier node's result is not in the state: the graph was wired wrong, or the state
    /// was edited by hand.
    #[error("the run has no {0} yet")]
    Missing(&'static str),
}

impl PipelineError {
    /// A model's failure while the node was `doing` something.
    pub fn model(doing: impl Into<String>, source: ModelError) -> Self {
        Self::Model {
            doing: doing.into(),
            source,
        }
    }
}

impl From<PipelineError> for NodeError {
    fn from(error: PipelineError) -> Self {
        let transient = match &error {
            PipelineError::Objects(_) | PipelineError::Database(_) => true,
            PipelineError::Model { source, .. } => source.is_transient(),
            PipelineError::Template(_) | PipelineError::Missing(_) => false,
        };
        match transient {
            true => NodeError::transient(error),
            false => NodeError::permanent(error),
        }
    }
}

/// `?` on the stores' and templates' errors inside a node, through [`PipelineError`]'s
/// classification.
macro_rules! through_pipeline_error {
    ($($source:ty),*) => {$(
        impl From<$source> for NodeError {
            fn from(error: $source) -> Self {
                PipelineError::from(error).into()
            }
        }
    )*};
}

through_pipeline_error!(ObjectError, StoreError, TemplateError);

#[cfg(test)]
mod tests {
    use super::*;
    use montage_graph::NodeErrorKind;

    #[test]
    fn stores_are_retried_and_templates_and_wiring_are_not() {
        let kind = |e: PipelineError| NodeError::from(e).kind;
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow disk");
        let objects = ObjectError::Io {
            context: "writing a picture".into(),
            source: io,
        };
        assert_eq!(
            kind(PipelineError::Objects(objects)),
            NodeErrorKind::Transient
        );
        assert_eq!(
            kind(PipelineError::Missing("plan")),
            NodeErrorKind::Permanent
        );
        assert_eq!(
            NodeError::from(PipelineError::Missing("plan")).message,
            "the run has no plan yet"
        );
    }

    #[test]
    fn a_model_failure_is_retried_only_when_the_model_says_it_passes() {
        let unavailable = ModelError::Unavailable("503 from the provider".into());
        assert!(unavailable.is_transient());
        let error = NodeError::from(PipelineError::model("the critic", unavailable));
        assert_eq!(error.kind, NodeErrorKind::Transient);
        assert!(
            error.message.starts_with("the critic: "),
            "{}",
            error.message
        );
        let refused = NodeError::from(PipelineError::model(
            "the critic",
            ModelError::InvalidRequest("no frames".into()),
        ));
        assert_eq!(refused.kind, NodeErrorKind::Permanent);
    }
}
