//! Do failed sign-ins reveal whether an account exists? Times sign-ins with an unknown identifier
//! and with a known identifier and a wrong password against a real server and database, and
//! prints the median of each and their difference. The two should be within a few percent: both
//! cost one argon2id verification (a dummy hash stands in for the missing account).
//!
//! Run with `cargo bench -p tests --bench login_timing` (or `just bench-login`); set
//! `LOGIN_TIMING_SAMPLES` to change the number of samples per case (default 60).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use ipa_identity::{IdentityPolicy, SessionLifetimes, ThrottlePolicy};
use reqwest::Method;
use serde_json::json;
use tests::TestServer;

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() {
    let samples: usize = std::env::var("LOGIN_TIMING_SAMPLES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(60);
    // The throttle would answer 429 without hashing; lift it for the measurement.
    let policy = IdentityPolicy {
        lifetimes: SessionLifetimes::default(),
        throttle: ThrottlePolicy::new(u32::MAX / 2, u32::MAX / 2, time::Duration::minutes(1))
            .unwrap(),
    };
    let server = TestServer::with_policy(policy).await;
    server.create_user("alice", false).await;

    let attempt = |identifier: &'static str| {
        let server = &server;
        async move {
            let started = Instant::now();
            let (status, _) = server
                .json(
                    Method::POST,
                    "/auth/login",
                    None,
                    Some(json!({"identifier": identifier, "password": "wrong-password"})),
                )
                .await;
            assert_eq!(status, 401);
            started.elapsed()
        }
    };
    // Warm up connections, caches and the blocking pool.
    for _ in 0..5 {
        attempt("nobody").await;
        attempt("alice").await;
    }
    let mut unknown = Vec::with_capacity(samples);
    let mut wrong_password = Vec::with_capacity(samples);
    // Interleaved, so drift in the machine's load affects both alike.
    for _ in 0..samples {
        unknown.push(attempt("nobody").await);
        wrong_password.push(attempt("alice").await);
    }
    let unknown = median(&mut unknown);
    let wrong_password = median(&mut wrong_password);
    let difference = unknown.as_secs_f64() - wrong_password.as_secs_f64();
    println!("login failure timing ({samples} samples each, medians):");
    println!(
        "  unknown account:              {:8.2} ms",
        unknown.as_secs_f64() * 1e3
    );
    println!(
        "  known account, wrong password: {:8.2} ms",
        wrong_password.as_secs_f64() * 1e3
    );
    println!(
        "  difference: {:+.2} ms ({:+.1}% of the wrong-password median)",
        difference * 1e3,
        100.0 * difference / wrong_password.as_secs_f64()
    );
}
