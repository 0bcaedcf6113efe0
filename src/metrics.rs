//! The server's Prometheus metrics: runs by status, queue depth, node durations, WebSocket
//! clients, in the text exposition format.

use crate::store::{Database, RunStatus, StoreError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

/// Why the metrics could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Counting the runs failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The text encoder failed.
    #[error("encoding the metrics failed")]
    Encode,
}

/// The metrics, shared by the workers and the server.
pub struct Metrics {
    registry: Registry,
    runs: Family<StatusLabel, Gauge>,
    queue_depth: Gauge,
    node_seconds: Family<NodeLabel, Histogram>,
    websocket_clients: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("montage");
        let runs = Family::<StatusLabel, Gauge>::default();
        registry.register("runs", "Runs by status", runs.clone());
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Runs waiting for a worker",
            queue_depth.clone(),
        );
        // 10 ms to about 20 minutes.
        let node_seconds = Family::<NodeLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 18))
        });
        registry.register(
            "node_duration_seconds",
            "Time a pipeline node (or one scene of it) took",
            node_seconds.clone(),
        );
        let websocket_clients = Gauge::default();
        registry.register(
            "websocket_clients",
            "WebSocket connections open",
            websocket_clients.clone(),
        );
        Metrics {
            registry,
            runs,
            queue_depth,
            node_seconds,
            websocket_clients,
        }
    }

    /// Records that `node` took `seconds`.
    pub fn node_finished(&self, node: &str, seconds: f64) {
        self.node_seconds
            .get_or_create(&NodeLabel {
                node: node.to_owned(),
            })
            .observe(seconds);
    }

    /// A WebSocket client connected; the returned guard counts it until dropped.
    pub fn websocket_connected(&self) -> ClientGuard {
        self.websocket_clients.inc();
        ClientGuard(self.websocket_clients.clone())
    }

    /// WebSocket sessions open now.
    pub fn websocket_sessions(&self) -> i64 {
        self.websocket_clients.get()
    }

    /// The metrics in Prometheus' text format, with the run counts read from `database` now.
    pub async fn render(&self, database: &Database) -> Result<String, MetricsError> {
        let counts = database.count_runs().await?;
        for status in RunStatus::ALL {
            let count = counts
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            self.runs
                .get_or_create(&StatusLabel {
                    status: status.as_str().to_owned(),
                })
                .set(count);
            if status == RunStatus::Queued {
                self.queue_depth.set(count);
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|_| MetricsError::Encode)?;
        Ok(text)
    }
}

/// Counts one WebSocket client while alive.
pub struct ClientGuard(Gauge);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
