//! How every remote provider is called: at most so many requests at once and per minute, a
//! timeout per attempt, retries with jittered exponential backoff on what may pass (timeouts,
//! refused connections, 429, 5xx) honouring `Retry-After`, none on what will not (400, 401,
//! 403, 404, 422), and a circuit breaker that stops calling a provider that keeps failing
//! until one probe succeeds.

use crate::error::ModelError;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Limits and timings of one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// The longest one attempt may take, connection to last byte.
    pub timeout: Duration,
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// The first retry's delay; each next one doubles, up to [`PolicyConfig::max_delay`].
    pub base_delay: Duration,
    /// The longest wait between attempts (a longer `Retry-After` is not waited out).
    pub max_delay: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests started per minute.
    pub per_minute: u32,
    /// Consecutive failed calls that open the breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before letting one probe through.
    pub breaker_cooldown: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            timeout: Duration::from_secs(120),
            attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            concurrency: 4,
            per_minute: 600,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// How one attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The provider answered with this status (and perhaps when to come back).
    Status {
        /// The HTTP status.
        status: u16,
        /// The provider's own words, if any.
        message: String,
        /// `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// The attempt took longer than the timeout.
    Timeout,
    /// No connection, or it broke.
    Connection(String),
    /// The answer came but cannot be read.
    Garbled(String),
}

impl Failure {
    /// Whether the same request may succeed later.
    pub fn may_pass(&self) -> bool {
        match self {
            Failure::Status { status, .. } => *status == 429 || *status >= 500,
            Failure::Timeout | Failure::Connection(_) => true,
            Failure::Garbled(_) => false,
        }
    }
}

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// The breaker is open: the provider failed too often lately and is not being called.
    Open {
        /// Until the next probe.
        retry_in: Duration,
    },
    /// The last attempt's failure, after `attempts` tries.
    Failed {
        /// How it failed.
        failure: Failure,
        /// Attempts made.
        attempts: u32,
    },
}

#[derive(Debug)]
enum BreakerState {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else waits for its verdict.
    Probing,
}

/// The guard around one provider: limits, retries and its breaker.
pub struct Policy {
    config: PolicyConfig,
    in_flight: Semaphore,
    rate: DefaultDirectRateLimiter,
    breaker: Mutex<BreakerState>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("config", &self.config)
            .finish()
    }
}

impl Policy {
    /// A guard with `config`.
    pub fn new(config: PolicyConfig) -> Policy {
        let per_minute = NonZeroU32::new(config.per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Policy {
            in_flight: Semaphore::new(config.concurrency.max(1)),
            rate: RateLimiter::direct(Quota::per_minute(per_minute)),
            breaker: Mutex::new(BreakerState::Closed { failures: 0 }),
            config,
        }
    }

    /// Calls `attempt` under the limits until it succeeds, fails for good, or the attempts
    /// run out.
    pub async fn call<T, F, Fut>(&self, attempt: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        self.call_retrying(attempt, Failure::may_pass).await
    }

    /// [`Policy::call`] for a request that must not be made twice (a paid job's submission):
    /// tried again only when the provider surely never took it (429, or no connection made;
    /// the caller reports a connection that broke after sending as something else).
    pub async fn call_unrepeated<T, F, Fut>(&self, attempt: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        self.call_retrying(attempt, |failure| {
            matches!(
                failure,
                Failure::Status { status: 429, .. } | Failure::Connection(_)
            )
        })
        .await
    }

    async fn call_retrying<T, F, Fut>(
        &self,
        mut attempt: F,
        retried: impl Fn(&Failure) -> bool,
    ) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        self.admit()?;
        let mut tried = 0;
        loop {
            tried += 1;
            let outcome = {
                let _slot = self.in_flight.acquire().await;
                self.rate.until_ready().await;
                match tokio::time::timeout(self.config.timeout, attempt()).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Failure::Timeout),
                }
            };
            match outcome {
                Ok(value) => {
                    self.record(true);
                    return Ok(value);
                }
                Err(failure) => {
                    let delay = self.delay(tried, &failure);
                    match delay.filter(|_| retried(&failure) && tried < self.config.attempts) {
                        Some(delay) => {
                            tracing::info!(
                                ?failure,
                                attempt = tried,
                                ?delay,
                                "retrying a model call"
                            );
                            tokio::time::sleep(delay).await;
                        }
                        None => {
                            // A request the provider refused says nothing of its health.
                            self.record(!failure.may_pass());
                            return Err(CallError::Failed {
                                failure,
                                attempts: tried,
                            });
                        }
                    }
                }
            }
        }
    }

    /// The wait before attempt `tried + 1`: `Retry-After` when given (none when it is beyond
    /// the longest wait), else jittered exponential backoff.
    fn delay(&self, tried: u32, failure: &Failure) -> Option<Duration> {
        if let Failure::Status {
            retry_after: Some(after),
            ..
        } = failure
        {
            return (*after <= self.config.max_delay).then_some(*after);
        }
        let exponential = self
            .config
            .base_delay
            .saturating_mul(2_u32.saturating_pow(tried.saturating_sub(1)))
            .min(self.config.max_delay);
        // Full jitter between half and the whole, so callers that failed together spread out.
        let jitter = 0.5 + rand::random::<f64>() * 0.5;
        Some(exponential.mul_f64(jitter))
    }

    fn admit(&self) -> Result<(), CallError> {
        let mut breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        match *breaker {
            BreakerState::Closed { .. } => Ok(()),
            BreakerState::Open { until } if Instant::now() >= until => {
                *breaker = BreakerState::Probing;
                Ok(())
            }
            BreakerState::Open { until } => Err(CallError::Open {
                retry_in: until - Instant::now(),
            }),
            BreakerState::Probing => Err(CallError::Open {
                retry_in: self.config.breaker_cooldown,
            }),
        }
    }

    fn record(&self, healthy: bool) {
        let mut breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        let failures = match *breaker {
            _ if healthy => {
                *breaker = BreakerState::Closed { failures: 0 };
                return;
            }
            BreakerState::Closed { failures } => failures + 1,
            // The probe failed, or a call admitted before the breaker opened.
            BreakerState::Probing | BreakerState::Open { .. } => self.config.breaker_failures,
        };
        *breaker = if failures >= self.config.breaker_failures {
            tracing::warn!(
                failures,
                "a model provider keeps failing: not calling it for a while"
            );
            BreakerState::Open {
                until: Instant::now() + self.config.breaker_cooldown,
            }
        } else {
            BreakerState::Closed { failures }
        };
    }
}

/// Who was called, as a failure's explanation names it (never the key: only its variable).
pub struct Caller<'a> {
    /// The provider's name.
    pub provider: &'a str,
    /// The variable the key came from.
    pub key_variable: &'a str,
    /// Where it is served.
    pub base_url: &'a str,
    /// The model asked for.
    pub model: &'a str,
    /// How long an attempt may take.
    pub timeout: Duration,
}

/// What a failed call tells the person: a sentence they can act on, naming the provider
/// and the key's variable.
pub fn explain(caller: &Caller<'_>, error: CallError) -> ModelError {
    let who = caller.provider;
    let variable = caller.key_variable;
    let model = caller.model;
    match error {
        CallError::Open { retry_in } => ModelError::Unavailable(format!(
            "{who} failed several times in a row; Montage is not calling it for another {} s",
            retry_in.as_secs().max(1)
        )),
        CallError::Failed { failure, attempts } => match failure {
            Failure::Status {
                status: status @ (401 | 403),
                message,
                ..
            } => ModelError::Rejected(match message.trim() {
                // The provider's words say why (a locked account, an exhausted balance), when
                // they say something beyond the status and cannot be quoting a credential.
                words if words.len() > 12 && !might_quote_a_secret(words) => {
                    format!("{who} refused the key in {variable} ({status}: {words})")
                }
                _ => format!("{who} refused the key in {variable} ({status})"),
            }),
            Failure::Status {
                status: 404,
                message,
                ..
            } => ModelError::Rejected(format!(
                "{who} does not know the model {model:?} ({message})"
            )),
            Failure::Status {
                status: 402,
                message,
                ..
            } => ModelError::Rejected(format!(
                "{who} wants payment before it runs this (402): {message}; add credit to the account of the key in {variable}"
            )),
            Failure::Status { status: 429, .. } => ModelError::Unavailable(format!(
                "{who} is rate-limiting Montage (429, {})",
                tries(attempts)
            )),
            Failure::Status {
                status: 503 | 529, ..
            } => ModelError::Unavailable(format!(
                "{who} is overloaded ({}, {})",
                status_of(&failure),
                tries(attempts)
            )),
            Failure::Status {
                status, message, ..
            } if status >= 500 => {
                // The body of a server error is for the log, not for people.
                tracing::info!(provider = %who, status, message, "a model server failed");
                ModelError::Unavailable(format!("{who} is failing ({status}, {})", tries(attempts)))
            }
            Failure::Status {
                status, message, ..
            } => ModelError::Rejected(format!("{who} refused the request ({status}): {message}")),
            Failure::Timeout => ModelError::Timeout {
                seconds: caller.timeout.as_secs_f64(),
            },
            Failure::Connection(reason) => ModelError::Unavailable(format!(
                "{who} cannot be reached at {}: {reason}",
                caller.base_url
            )),
            Failure::Garbled(reason) => {
                ModelError::InvalidOutput(format!("{who} answered something unreadable: {reason}"))
            }
        },
    }
}

/// Whether a refusal's words could hold a credential: they name one, or hold a long token.
fn might_quote_a_secret(words: &str) -> bool {
    let lower = words.to_ascii_lowercase();
    ["key", "token", "bearer", "secret", "credential"]
        .iter()
        .any(|name| lower.contains(name))
        || words
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .any(|run| run.len() >= 16)
}

pub(crate) fn tries(attempts: u32) -> String {
    match attempts {
        1 => "1 attempt".into(),
        n => format!("{n} attempts"),
    }
}

fn status_of(failure: &Failure) -> String {
    match failure {
        Failure::Status { status, .. } => status.to_string(),
        _ => "no status".into(),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is read as "soon").
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    Some(
        value
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(1)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick() -> PolicyConfig {
        PolicyConfig {
            timeout: Duration::from_secs(5),
            attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            concurrency: 2,
            per_minute: 10_000,
            breaker_failures: 2,
            breaker_cooldown: Duration::from_secs(60),
        }
    }

    fn status(status: u16, retry_after: Option<u64>) -> Failure {
        Failure::Status {
            status,
            message: String::new(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn what_may_pass_is_retried_honouring_retry_after_and_what_will_not_is_not() {
        let policy = Policy::new(quick());
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let answer = policy
            .call(|| async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(status(429, Some(7))),
                    1 => Err(status(503, None)),
                    _ => Ok("done"),
                }
            })
            .await;
        assert_eq!(answer, Ok("done"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(7),
            "Retry-After honoured: {waited:?}"
        );
        assert!(waited < Duration::from_secs(8), "{waited:?}");

        let calls = AtomicU32::new(0);
        let refused = policy
            .call(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(status(401, None))
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a 401 is not retried");
        assert!(matches!(
            refused,
            Err(CallError::Failed {
                attempts: 1,
                failure: Failure::Status { status: 401, .. }
            })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_takes_too_long_times_out() {
        let policy = Policy::new(PolicyConfig {
            attempts: 1,
            ..quick()
        });
        let stalled = policy
            .call(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<_, Failure>(())
            })
            .await;
        assert_eq!(
            stalled,
            Err(CallError::Failed {
                failure: Failure::Timeout,
                attempts: 1
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_after_failures_and_one_probe_closes_it() {
        let policy = Policy::new(PolicyConfig {
            attempts: 1,
            ..quick()
        });
        for _ in 0..2 {
            let failed = policy
                .call(|| async { Err::<(), _>(status(500, None)) })
                .await;
            assert!(matches!(failed, Err(CallError::Failed { .. })));
        }
        let calls = AtomicU32::new(0);
        let refused = policy
            .call(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Failure>(())
            })
            .await;
        assert!(
            matches!(refused, Err(CallError::Open { .. })),
            "{refused:?}"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "an open breaker calls nobody"
        );
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(policy.call(|| async { Ok::<_, Failure>(1) }).await, Ok(1));
        assert_eq!(
            policy.call(|| async { Ok::<_, Failure>(2) }).await,
            Ok(2),
            "closed again"
        );
    }
}
