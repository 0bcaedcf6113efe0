//! Paid jobs stopped at their provider when a run is cancelled.

use montage_graph::NodeContext;
use montage_models::ModelError;
use std::sync::Arc;

/// Stops a paid job at its provider when the node that waits for it is dropped because the
/// run was cancelled. A crash or a shutdown drops nothing this way: those jobs are resumed.
pub(super) struct StopOnCancel {
    ctx: NodeContext,
    stop: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

impl StopOnCancel {
    /// Stops `job_key`'s job through `model`'s `cancel` if the run is cancelled while this
    /// is held.
    pub(super) fn new<M, F>(
        ctx: &NodeContext,
        model: Arc<M>,
        job_key: &str,
        cancel: F,
    ) -> StopOnCancel
    where
        M: ?Sized + Send + Sync + 'static,
        F: for<'a> Fn(
                &'a M,
                &'a str,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<bool, ModelError>> + Send + 'a>,
            > + Send
            + 'static,
    {
        let key = job_key.to_owned();
        StopOnCancel {
            ctx: ctx.clone(),
            stop: Some(Box::pin(async move {
                if let Err(error) = cancel(&model, &key).await {
                    tracing::warn!(%error, "a paid job could not be stopped at its provider");
                }
            })),
        }
    }
}

impl Drop for StopOnCancel {
    fn drop(&mut self) {
        if !self.ctx.is_cancelled() {
            return;
        }
        if let (Some(stop), Ok(runtime)) = (self.stop.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(stop);
        }
    }
}
