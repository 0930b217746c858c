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
import os
import shutil
import subprocess
import sys
from pathlib import Path

from live_server import NORMAL_USER, ROOT, SUPERUSER, LiveServer, program

HERE = Path(__file__).resolve().parent


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
        program(args.schemathesis),
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

    failed = []
    with LiveServer(args.ipa, args.work_dir) as server:
        server.create_normal_user()
        # The normal user goes first: the superuser's run may deactivate any account it lists.
        for account in (NORMAL_USER, SUPERUSER):
            code = run_schemathesis(args, server.base, account, args.work_dir / account["username"])
            if code != 0:
                failed.append(account["username"])
    if failed:
        print(f"\nSchemathesis found failures as: {', '.join(failed)} (reports under {args.work_dir})")
        return 1
    print("\nSchemathesis: no failures as a superuser nor as a normal user.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
