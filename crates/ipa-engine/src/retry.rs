//! The one retry policy of outbound calls ([`RetryPolicy`]), shared by webhook steps and by the
//! calls of agent steps (model providers, `custom` endpoints): how many attempts, how long to
//! wait between them, and which failures are worth another attempt; and the one loop that makes
//! a call's attempts under it ([`RetryPolicy::run`]). The policy is pure and the loop does no I/O
//! of its own: each caller says, through [`Attempts`], how it makes an attempt, what its own
//! limits allow, and how it records and waits, since a webhook step commits its lines under the
//! run's lease and wakes for a cancel while an agent step's calls record through its recorder.

use std::time::Duration;

use ipa_workflow::definition::{self, Backoff};

use crate::outbound::OutboundFailure;

/// Which failures of an attempt are worth another one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retryable {
    /// Every failure but a request that cannot be built (its definition, or the data its
    /// templates use, must change first). A webhook step's author asked for retries and knows
    /// the endpoint: its 4xx may well mean "not yet".
    AllButInvalid,
    /// Only what a later attempt may fix: HTTP 429, 5xx and connections that failed. A model
    /// provider's other 4xx refuse the request itself, and a call that ran out of its time
    /// already used what it was given.
    Transient,
}

/// How an outbound call is retried.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all (1: no retry).
    pub max_attempts: u32,
    /// The waits between attempts; `max_ms` also caps a wait the endpoint asks for.
    pub backoff: Backoff,
    /// Which failures are tried again.
    pub retryable: Retryable,
    /// Whether the wait an endpoint asks for (`Retry-After`, `retry-after-ms`) replaces the
    /// backoff. Providers say when their rate limit lifts; a webhook step keeps the waits its
    /// definition chose.
    pub follow_retry_after: bool,
}

impl RetryPolicy {
    /// The policy of model provider and `custom` endpoint calls: 4 attempts, waits of 1, 2 and
    /// 4 s unless the provider asks for another (at most 60 s), transient failures only.
    pub const MODEL_CALLS: Self = Self {
        max_attempts: 4,
        backoff: Backoff {
            initial_ms: 1_000,
            factor: 2.0,
            max_ms: 60_000,
        },
        retryable: Retryable::Transient,
        follow_retry_after: true,
    };

    /// The policy a webhook step's definition declares.
    pub fn of_step(declared: &definition::RetryPolicy) -> Self {
        Self {
            max_attempts: u32::from(declared.max_attempts.max(1)),
            backoff: declared.backoff,
            retryable: Retryable::AllButInvalid,
            follow_retry_after: false,
        }
    }

    /// Whether `failure` is worth another attempt, attempts left or not.
    pub fn is_retryable(&self, failure: &OutboundFailure) -> bool {
        match self.retryable {
            Retryable::AllButInvalid => !matches!(failure, OutboundFailure::InvalidRequest(_)),
            Retryable::Transient => match failure {
                OutboundFailure::Status(response) => {
                    response.status == 429 || response.status >= 500
                }
                OutboundFailure::Transport(_) => true,
                OutboundFailure::TimedOut(_) | OutboundFailure::InvalidRequest(_) => false,
            },
        }
    }

    /// The wait after failed attempt number `attempt` (1 for the first), which failed with
    /// `failure`: the endpoint's own when the policy follows it and it gave one, else the
    /// backoff's; never more than the backoff's longest wait.
    pub fn delay(&self, attempt: u32, failure: &OutboundFailure) -> Duration {
        let longest = Duration::from_millis(self.backoff.max_ms);
        let asked = match failure {
            OutboundFailure::Status(response) if self.follow_retry_after => response.retry_after,
            _ => None,
        };
        asked
            .unwrap_or_else(|| Duration::from_millis(self.backoff.delay_ms(attempt)))
            .min(longest)
    }

    /// The wait before the next attempt after attempt number `attempt` failed with `failure`,
    /// or `None` when that failure is final (not retryable, or no attempt left).
    pub fn next(&self, attempt: u32, failure: &OutboundFailure) -> Option<Duration> {
        (attempt < self.max_attempts && self.is_retryable(failure))
            .then(|| self.delay(attempt, failure))
    }
}

/// One caller's side of [`RetryPolicy::run`]: how it makes an attempt and what it records of
/// each.
pub(crate) trait Attempts {
    /// What a successful attempt gives.
    type Success;
    /// What the call ends with.
    type Outcome;

    /// Makes attempt number `attempt` (from 1). `Err` ends the call at once with that outcome
    /// (the step was interrupted, say).
    async fn attempt(
        &mut self,
        attempt: u32,
    ) -> Result<Result<Self::Success, OutboundFailure>, Self::Outcome>;

    /// Whether the caller's own limits (its step's or run's time) leave room for another attempt
    /// after `failure` and a wait of `wait`, which the policy allows.
    fn may_retry(&self, failure: &OutboundFailure, wait: Duration) -> bool;

    /// Attempt `attempt` succeeded with `success`.
    async fn succeeded(&mut self, attempt: u32, success: Self::Success) -> Self::Outcome;

    /// Attempt `attempt` failed with `failure` and is tried again after `wait`: records it and
    /// waits. `Err` ends the call at once with that outcome.
    async fn retrying(
        &mut self,
        attempt: u32,
        failure: OutboundFailure,
        wait: Duration,
    ) -> Result<(), Self::Outcome>;

    /// Attempt `attempt` failed with `failure`, for good.
    async fn gave_up(&mut self, attempt: u32, failure: OutboundFailure) -> Self::Outcome;
}

impl RetryPolicy {
    /// Makes `attempts`' attempts until one succeeds, one fails for good (not retryable, no
    /// attempt left, or no room left in the caller's limits), or the caller stops.
    pub(crate) async fn run<A: Attempts>(&self, mut attempts: A) -> A::Outcome {
        let mut attempt = 1;
        loop {
            let failure = match attempts.attempt(attempt).await {
                Ok(Ok(success)) => return attempts.succeeded(attempt, success).await,
                Ok(Err(failure)) => failure,
                Err(outcome) => return outcome,
            };
            let wait = self
                .next(attempt, &failure)
                .filter(|wait| attempts.may_retry(&failure, *wait));
            let Some(wait) = wait else {
                return attempts.gave_up(attempt, failure).await;
            };
            if let Err(outcome) = attempts.retrying(attempt, failure, wait).await {
                return outcome;
            }
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::outbound::OutboundResponse;

    fn status(code: u16, retry_after: Option<Duration>) -> OutboundFailure {
        OutboundFailure::Status(OutboundResponse {
            status: code,
            body: Value::Null,
            truncated: false,
            bytes: 0,
            retry_after,
        })
    }

    fn step(max_attempts: u8, initial_ms: u64, factor: f64, max_ms: u64) -> RetryPolicy {
        RetryPolicy::of_step(&definition::RetryPolicy {
            max_attempts,
            backoff: Backoff {
                initial_ms,
                factor,
                max_ms,
            },
        })
    }

    #[test]
    fn model_calls_wait_one_two_four_seconds_then_give_up() {
        let policy = RetryPolicy::MODEL_CALLS;
        let busy = status(503, None);
        let waits: Vec<Option<Duration>> = (1..=4).map(|n| policy.next(n, &busy)).collect();
        assert_eq!(
            waits,
            vec![
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(4)),
                None
            ]
        );
    }

    #[test]
    fn the_backoff_is_capped() {
        let policy = RetryPolicy::MODEL_CALLS;
        let busy = status(500, None);
        assert_eq!(policy.delay(6, &busy), Duration::from_secs(32));
        assert_eq!(policy.delay(7, &busy), Duration::from_secs(60));
        assert_eq!(policy.delay(40, &busy), Duration::from_secs(60));
        let policy = step(10, 100, 3.0, 1_000);
        let waits: Vec<u128> = (1..=5)
            .map(|n| policy.delay(n, &busy).as_millis())
            .collect();
        assert_eq!(waits, vec![100, 300, 900, 1_000, 1_000]);
    }

    #[test]
    fn a_provider_asked_wait_replaces_the_backoff_within_the_cap() {
        let policy = RetryPolicy::MODEL_CALLS;
        let limited = status(429, Some(Duration::from_millis(250)));
        assert_eq!(policy.next(1, &limited), Some(Duration::from_millis(250)));
        let long = status(429, Some(Duration::from_secs(3_600)));
        assert_eq!(policy.next(1, &long), Some(Duration::from_secs(60)));
        // A webhook step keeps its own waits.
        let policy = step(3, 500, 2.0, 10_000);
        assert_eq!(policy.next(1, &limited), Some(Duration::from_millis(500)));
    }

    #[test]
    fn model_calls_retry_only_transient_failures() {
        let policy = RetryPolicy::MODEL_CALLS;
        assert!(policy.is_retryable(&status(429, None)));
        assert!(policy.is_retryable(&status(500, None)));
        assert!(policy.is_retryable(&status(503, None)));
        assert!(policy.is_retryable(&OutboundFailure::Transport("reset".to_owned())));
        assert!(!policy.is_retryable(&status(400, None)));
        assert!(!policy.is_retryable(&status(404, None)));
        assert!(!policy.is_retryable(&OutboundFailure::TimedOut(1_000)));
        assert!(!policy.is_retryable(&OutboundFailure::InvalidRequest("bad".to_owned())));
    }

    #[test]
    fn webhook_steps_retry_all_but_invalid_requests() {
        let policy = step(3, 1_000, 2.0, 60_000);
        assert!(policy.is_retryable(&status(404, None)));
        assert!(policy.is_retryable(&status(500, None)));
        assert!(policy.is_retryable(&OutboundFailure::TimedOut(1_000)));
        assert!(policy.is_retryable(&OutboundFailure::Transport("refused".to_owned())));
        assert!(!policy.is_retryable(&OutboundFailure::InvalidRequest("bad".to_owned())));
        assert_eq!(
            policy.next(3, &status(500, None)),
            None,
            "no attempt is left after the third"
        );
    }

    /// Attempts that fail with the failures given, in order, then succeed; recording what the
    /// loop asked of them.
    struct Scripted {
        failures: Vec<OutboundFailure>,
        /// Whether the caller's limits allow a retry.
        room: bool,
        /// Stop the call instead of waiting before attempt 3.
        stop_before_third: bool,
        log: Vec<String>,
    }

    impl Scripted {
        fn new(failures: Vec<OutboundFailure>) -> Self {
            Self {
                failures,
                room: true,
                stop_before_third: false,
                log: Vec::new(),
            }
        }
    }

    impl Attempts for &mut Scripted {
        type Success = u32;
        type Outcome = Result<u32, String>;

        async fn attempt(
            &mut self,
            attempt: u32,
        ) -> Result<Result<u32, OutboundFailure>, Self::Outcome> {
            self.log.push(format!("attempt {attempt}"));
            if self.failures.is_empty() {
                Ok(Ok(attempt))
            } else {
                Ok(Err(self.failures.remove(0)))
            }
        }

        fn may_retry(&self, _failure: &OutboundFailure, _wait: Duration) -> bool {
            self.room
        }

        async fn succeeded(&mut self, attempt: u32, success: u32) -> Self::Outcome {
            self.log.push(format!("succeeded {attempt}"));
            Ok(success)
        }

        async fn retrying(
            &mut self,
            attempt: u32,
            failure: OutboundFailure,
            wait: Duration,
        ) -> Result<(), Self::Outcome> {
            self.log.push(format!(
                "retrying {attempt} after {} ms: {failure}",
                wait.as_millis()
            ));
            if self.stop_before_third && attempt == 2 {
                return Err(Err("stopped".to_owned()));
            }
            Ok(())
        }

        async fn gave_up(&mut self, attempt: u32, failure: OutboundFailure) -> Self::Outcome {
            self.log.push(format!("gave up {attempt}: {failure}"));
            Err(failure.to_string())
        }
    }

    #[tokio::test]
    async fn the_loop_retries_until_an_attempt_succeeds() {
        let mut script = Scripted::new(vec![status(503, None), status(429, None)]);
        let outcome = RetryPolicy::MODEL_CALLS.run(&mut script).await;
        assert_eq!(outcome, Ok(3));
        assert_eq!(
            script.log,
            vec![
                "attempt 1",
                "retrying 1 after 1000 ms: the endpoint answered 503",
                "attempt 2",
                "retrying 2 after 2000 ms: the endpoint answered 429",
                "attempt 3",
                "succeeded 3",
            ]
        );
    }

    #[tokio::test]
    async fn the_loop_gives_up_when_the_policy_or_the_caller_says_so() {
        // Out of attempts.
        let mut script = Scripted::new((0..5).map(|_| status(500, None)).collect());
        let outcome = step(2, 10, 2.0, 100).run(&mut script).await;
        assert_eq!(outcome, Err("the endpoint answered 500".to_owned()));
        assert_eq!(script.log.len(), 4, "{:?}", script.log);
        assert_eq!(script.log[3], "gave up 2: the endpoint answered 500");

        // Not retryable.
        let mut script = Scripted::new(vec![status(400, None)]);
        let outcome = RetryPolicy::MODEL_CALLS.run(&mut script).await;
        assert!(outcome.is_err());
        assert_eq!(
            script.log,
            vec!["attempt 1", "gave up 1: the endpoint answered 400"]
        );

        // No room left in the caller's limits.
        let mut script = Scripted::new(vec![status(503, None)]);
        script.room = false;
        let outcome = RetryPolicy::MODEL_CALLS.run(&mut script).await;
        assert!(outcome.is_err());
        assert_eq!(
            script.log,
            vec!["attempt 1", "gave up 1: the endpoint answered 503"]
        );
    }

    #[tokio::test]
    async fn the_caller_may_stop_while_waiting() {
        let mut script = Scripted::new((0..3).map(|_| status(503, None)).collect());
        script.stop_before_third = true;
        let outcome = RetryPolicy::MODEL_CALLS.run(&mut script).await;
        assert_eq!(outcome, Err("stopped".to_owned()));
        assert_eq!(
            script.log.last().map(String::as_str),
            Some("retrying 2 after 2000 ms: the endpoint answered 503")
        );
        assert_eq!(script.log.len(), 4);
    }

    #[test]
    fn a_step_declaring_no_attempts_still_makes_one() {
        let policy = step(0, 1_000, 2.0, 60_000);
        assert_eq!(policy.max_attempts, 1);
        assert_eq!(policy.next(1, &status(500, None)), None);
    }
}
