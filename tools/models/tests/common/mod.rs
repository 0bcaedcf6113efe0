//! What the recorded-exchange tests share: the recordings, and a policy that retries fast.

use montage_models::remote::policy::PolicyConfig;
use serde_json::Value;
use std::time::Duration;

/// A recorded answer: `tests/cassettes/{api}/{name}.json`.
pub fn cassette(api: &str, name: &str) -> Value {
    let path = format!(
        "{}/tests/cassettes/{api}/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Three attempts, milliseconds apart, a two-second timeout, a breaker that stays shut.
pub fn quick_policy() -> PolicyConfig {
    PolicyConfig {
        timeout: Duration::from_secs(2),
        attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
        breaker_failures: 10,
        ..PolicyConfig::default()
    }
}
