//! The models of each run: the server's own, or those a run chose (among the choices the
//! server allows), connected once per distinct choice and shared by the runs that make it.

use super::{JobServices, ProviderError, Providers};
use crate::config::ModelsConfig;
use std::collections::HashMap;
use tokio::sync::Mutex;

/// The models of the server's configuration, and of every other choice runs made.
pub struct Registry {
    configured: ModelsConfig,
    default: Providers,
    jobs: JobServices,
    chosen: Mutex<HashMap<String, Providers>>,
}

impl Registry {
    /// The registry of a server whose `configured` models resolved to `default`, paid jobs
    /// shared through `jobs`.
    pub fn new(configured: ModelsConfig, default: Providers, jobs: JobServices) -> Registry {
        Registry {
            configured,
            default,
            jobs,
            chosen: Mutex::new(HashMap::new()),
        }
    }

    /// The server's own models.
    pub fn configured(&self) -> &Providers {
        &self.default
    }

    /// The models `models` names: the server's own when they are its configuration, else
    /// connected now (once: later runs with the same choice share them, breaker included).
    pub async fn of(&self, models: &ModelsConfig) -> Result<Providers, ProviderError> {
        if *models == self.configured {
            return Ok(self.default.clone());
        }
        let key = serde_json::to_string(models).unwrap_or_default();
        if let Some(providers) = self.chosen.lock().await.get(&key) {
            return Ok(providers.clone());
        }
        // Connected without holding the lock (it may ask endpoints which models they
        // serve); two runs making the same new choice at once keep the first connection.
        let (providers, _) = Providers::resolve(models, &self.jobs).await?;
        Ok(self
            .chosen
            .lock()
            .await
            .entry(key)
            .or_insert(providers)
            .clone())
    }
}
