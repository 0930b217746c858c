#!/usr/bin/env python3
"""Swagger UI in a real browser: Debian's Chromium, headless, against a live server.

Starts `ipa serve` in embedded mode (no engine workers), signs the normal user in, installs
playwright-core (pinned in scripts/contract/browser/package.json) under `--work-dir`, and runs
browser/swagger-ui.mjs: every operation of docs/openapi.json must render at /docs with its
parameters and body fields, the Authorize dialog must take the token, and "Try it out" on
GET /me must answer 200. The screenshot is kept as `<work-dir>/swagger-ui.png`.

    python scripts/contract/swagger_ui.py --ipa target/debug/ipa
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from live_server import NORMAL_USER, ROOT, LiveServer, program

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ipa", type=Path, default=ROOT / "target/debug/ipa", help="the server binary")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--npm", default=shutil.which("npm") or "npm")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "target/swagger-ui")
    args = parser.parse_args()

    if not Path(args.chromium).exists():
        sys.exit(f"no Chromium at {args.chromium}: install Debian's chromium package")
    project = args.work_dir / "browser"
    project.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "swagger-ui.mjs"):
        shutil.copyfile(HERE / "browser" / name, project / name)
    installed = project / "node_modules/.package.json"
    if not installed.exists() or installed.stat().st_mtime < (project / "package.json").stat().st_mtime:
        subprocess.run([program(args.npm), "install", "--no-audit", "--no-fund", "--silent"], cwd=project, check=True)

    screenshot = args.work_dir / "swagger-ui.png"
    with LiveServer(args.ipa, args.work_dir / "server") as server:
        server.create_normal_user()
        env = {
            **os.environ,
            "IPA_URL": server.base,
            "IPA_TOKEN": server.sign_in(NORMAL_USER),
            "IPA_USERNAME": NORMAL_USER["username"],
            "DOCUMENT": str(ROOT / "docs/openapi.json"),
            "CHROMIUM": program(args.chromium),
            "SCREENSHOT": str(screenshot),
        }
        return subprocess.call(["node", project / "swagger-ui.mjs"], env=env)


if __name__ == "__main__":
    sys.exit(main())
