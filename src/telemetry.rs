//! Logging set-up: `tracing` to stderr, filtered by `RUST_LOG` (default: Montage's own crates
//! at `info`, libraries at `warn`, so a decoder's chatter stays out of a user's terminal).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "warn,montage=info,montage_audio=warn,montage_compositor=warn,montage_graph=warn",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
