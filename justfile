# Everyday commands for the IPA Platform. `just --list` shows them.
# Install just with `cargo install just` or `pip install rust-just`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Show the recipes.
[private]
default:
    @{{just_executable()}} --justfile "{{justfile()}}" --list

# Run the server (embedded PostgreSQL unless DATABASE_URL is set); extra arguments go to `ipa serve`.
run *ARGS:
    cargo run -p ipa-server -- serve {{ARGS}}

# Run the whole test suite (throwaway PostgreSQL clusters unless DATABASE_URL is set) and the documentation examples.
test:
    cargo nextest run --workspace
    cargo test --doc --workspace

# Check formatting and run Clippy with warnings as errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format every crate.
fmt:
    cargo fmt --all

# Manage the schema: `just migrate up`, `down --steps 2`, `status`, `fresh` (fresh destroys data).
migrate *ARGS:
    cargo run -q -p ipa-server -- migrate {{ARGS}}

# Regenerate ipa-store's SeaORM entities from a freshly migrated schema (needs sea-orm-cli; see the script).
entities:
    scripts/generate-entities

# Regenerate docs/openapi.json from the server's OpenAPI document.
openapi:
    cargo run -q -p ipa-server -- openapi > docs/openapi.json.tmp
    mv docs/openapi.json.tmp docs/openapi.json

# Run Schemathesis against a live server, as a normal user and as a superuser (needs `pip install schemathesis==4.32.5`).
contract *ARGS:
    cargo build -p ipa-server --bin ipa
    python3 scripts/contract/run_schemathesis.py {{ARGS}}

# Generate the Python and TypeScript clients under target/clients and drive a scenario through each (needs `pip install openapi-python-client==0.29.1`, npm); `just clients --generate-only`.
clients *ARGS:
    cargo build -p ipa-server --bin ipa
    python3 scripts/contract/clients.py {{ARGS}}

# Check Swagger UI at /docs in headless Chromium (Debian's `chromium`); the screenshot goes to target/swagger-ui/.
swagger-ui *ARGS:
    cargo build -p ipa-server --bin ipa
    python3 scripts/contract/swagger_ui.py {{ARGS}}

# Run what continuous integration runs (.ci/run).
ci:
    bash .ci/run

# Print the medians of failed sign-ins with an unknown account and with a wrong password.
bench-login:
    cargo bench -p tests --bench login_timing

# Print the time and peak memory of checking definitions and group agents of 1,000 to 100,000 items.
bench-checks:
    cargo bench -p tests --bench document_checks

# Run the benchmark suite on a fresh, seeded PostgreSQL (release build); `just bench --size small`.
bench *ARGS:
    cargo build --release -p ipa-server -p ipa-bench
    cargo run --release -q -p ipa-bench -- {{ARGS}}
