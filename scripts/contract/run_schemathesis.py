#!/usr/bin/env python3
"""Schemathesis against a live IPA Platform server, as a superuser and as a normal user.

Starts `ipa serve` in embedded mode on a fresh data directory (engine workers off, so no
generated URL is ever called), creates a normal account beside the bootstrap superuser, and
runs every phase of Schemathesis (examples, coverage, fuzzing, stateful) with every check
against the document the server publishes, once per account, with a fixed budget and seed.
Exits non-zero when any run reports a failure. Reports go under `--work-dir`.

    python scripts/contract/run_schemathesis.py --ipa target/debug/ipa
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

SUPERUSER = {"email": "contract-admin@ipa.local", "username": "contract-admin", "password": "contract-admin-password"}
NORMAL_USER = {"email": "contract-user@ipa.local", "username": "contract-user", "password": "contract-user-password"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(base: str, method: str, path: str, body=None, token=None):
    """One JSON request; the status and the decoded body."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def wait_ready(base: str, server: subprocess.Popen, log: Path, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with {server.returncode} before it was ready; see {log}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    sys.exit(f"the server was not ready within {within:.0f} s; see {log}")


def start_server(ipa: Path, work_dir: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ)
    for name in ("DATABASE_URL", "IPA_DATABASE_DIRECT_URL", "IPA_DB_POOLING"):
        env.pop(name, None)
    env.update(
        {
            "IPA_DATA_DIR": str(work_dir / "data"),
            "IPA_BIND": f"127.0.0.1:{port}",
            # No engine workers: a generated definition's URLs are stored, never called.
            "IPA_WORKERS": "0",
            "IPA_BOOTSTRAP_ADMIN_EMAIL": SUPERUSER["email"],
            "IPA_BOOTSTRAP_ADMIN_USERNAME": SUPERUSER["username"],
            "IPA_BOOTSTRAP_ADMIN_PASSWORD": SUPERUSER["password"],
            # Generated sign-ins fail by the thousand; the run's own sign-ins must not be throttled.
            "IPA_LOGIN_MAX_FAILURES": "1000000",
            "IPA_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
            "IPA_LOG_FORMAT": "json",
            "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
        }
    )
    log = open(work_dir / "server.log", "wb")
    return subprocess.Popen([str(ipa), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)


def run_schemathesis(args, base: str, account: dict, report_dir: Path) -> int:
    env = dict(os.environ)
    env.update(
        {
            "IPA_CONTRACT_URL": base,
            "IPA_CONTRACT_IDENTIFIER": account["username"],
            "IPA_CONTRACT_PASSWORD": account["password"],
            "SCHEMATHESIS_HOOKS": "ipa_contract_hooks",
            "PYTHONPATH": str(HERE) + os.pathsep + env.get("PYTHONPATH", ""),
        }
    )
    command = [
        args.schemathesis,
        f"--config-file={HERE / 'schemathesis.toml'}",
        "run",
        f"{base}/openapi.json",
        "--checks=all",
        f"--phases={args.phases}",
        f"--max-examples={args.max_examples}",
        f"--seed={args.seed}",
        "--workers=1",
        "--generation-database=none",
        "--request-timeout=30",
        "--suppress-health-check=all",
        "--no-color",
        "--report=junit,ndjson",
        f"--report-dir={report_dir}",
    ]
    print(f"\n==== Schemathesis as {account['username']} ====", flush=True)
    # Schemathesis keeps a cache in its working directory: the work directory, not the checkout.
    return subprocess.call(command, env=env, cwd=report_dir.parent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ipa", type=Path, default=ROOT / "target/debug/ipa", help="the server binary")
    parser.add_argument("--schemathesis", default=shutil.which("schemathesis") or "schemathesis")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "target/contract")
    parser.add_argument("--max-examples", type=int, default=25, help="test cases per operation and phase")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    args = parser.parse_args()

    if args.work_dir.exists():
        shutil.rmtree(args.work_dir)
    args.work_dir.mkdir(parents=True)
    # The embedded PostgreSQL runs as another OS user when this runs as root: it must reach its
    # cluster inside the work directory.
    args.work_dir.chmod(0o755)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(args.ipa, args.work_dir, port)
    try:
        wait_ready(base, server, args.work_dir / "server.log", within=180)
        status, signed_in = call(base, "POST", "/auth/login", {"identifier": SUPERUSER["username"], "password": SUPERUSER["password"]})
        if status != 200:
            sys.exit(f"the superuser cannot sign in: {status} {signed_in}")
        status, created = call(base, "POST", "/users", NORMAL_USER, token=signed_in["access_token"])
        if status != 201:
            sys.exit(f"cannot create the normal user: {status} {created}")
        failed = []
        # The normal user goes first: the superuser's run may deactivate any account it lists.
        for account in (NORMAL_USER, SUPERUSER):
            code = run_schemathesis(args, base, account, args.work_dir / account["username"])
            if code != 0:
                failed.append(account["username"])
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    if failed:
        print(f"\nSchemathesis found failures as: {', '.join(failed)} (reports under {args.work_dir})")
        return 1
    print("\nSchemathesis: no failures as a superuser nor as a normal user.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
