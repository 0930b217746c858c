#!/usr/bin/env python3
"""Generated clients against a live IPA Platform server: Python and TypeScript.

Generates a Python client (openapi-python-client, which must report no warning) and a
TypeScript client (@hey-api/openapi-ts, type-checked with `tsc --strict` together with the
scenario) from docs/openapi.json into `--work-dir`, checks that each has every operation of the
document, then starts `ipa serve` in embedded mode with engine workers and runs the same
scenario through each client (scripts/contract/python/scenario.py and typescript/scenario.ts)
as a normal user. Generated code is never committed: this command makes it again.

    python scripts/contract/clients.py --ipa target/debug/ipa
    python scripts/contract/clients.py --generate-only
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from live_server import NORMAL_USER, ROOT, LiveServer, program

HERE = Path(__file__).resolve().parent
DOCUMENT = ROOT / "docs/openapi.json"


def operation_ids() -> list[str]:
    document = json.loads(DOCUMENT.read_text())
    return [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(str(part) for part in command), flush=True)
    return subprocess.run(command, check=True, **kwargs)


def generate_python(generator: str, out_dir: Path) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    result = run(
        [
            generator,
            "generate",
            f"--path={DOCUMENT}",
            f"--output-path={out_dir}",
            f"--config={HERE / 'python/openapi-python-client.yaml'}",
            "--meta=none",
        ],
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    print(output, end="")
    if "warning" in output.lower():
        sys.exit("openapi-python-client reported warnings")
    modules = {path.stem for path in (out_dir / "api").glob("*/*.py")}
    missing = [name for name in operation_ids() if snake_case(name) not in modules]
    if missing:
        sys.exit(f"the Python client lacks operations: {missing}")
    print(f"Python client: {len(operation_ids())} operations, no warning.")


def generate_typescript(npm: str, project: Path) -> None:
    project.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "tsconfig.json"):
        shutil.copyfile(HERE / "typescript" / name, project / name)
    source = project / "src"
    if source.exists():
        shutil.rmtree(source)
    source.mkdir()
    shutil.copyfile(HERE / "typescript/scenario.ts", source / "scenario.ts")
    installed = project / "node_modules/.package.json"
    if not installed.exists() or installed.stat().st_mtime < (project / "package.json").stat().st_mtime:
        run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=project)
    bin_dir = project / "node_modules/.bin"
    run(
        [bin_dir / "openapi-ts", "-i", DOCUMENT, "-o", source / "client", "-c", "@hey-api/client-fetch"],
        cwd=project,
        env={**os.environ, "NO_COLOR": "1"},
    )
    sdk = (source / "client/sdk.gen.ts").read_text()
    missing = [name for name in operation_ids() if f"export const {name} =" not in sdk]
    if missing:
        sys.exit(f"the TypeScript client lacks operations: {missing}")
    dist = project / "dist"
    if dist.exists():
        shutil.rmtree(dist)
    run([bin_dir / "tsc", "-p", project])
    print(f"TypeScript client: {len(operation_ids())} operations, type-checked with tsc --strict.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ipa", type=Path, default=ROOT / "target/debug/ipa", help="the server binary")
    parser.add_argument(
        "--openapi-python-client",
        default=shutil.which("openapi-python-client") or "openapi-python-client",
    )
    parser.add_argument("--npm", default=shutil.which("npm") or "npm")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "target/clients")
    parser.add_argument("--generate-only", action="store_true", help="generate and type-check, run nothing")
    args = parser.parse_args()

    python_dir = args.work_dir / "python"
    typescript_dir = args.work_dir / "typescript"
    generate_python(program(args.openapi_python_client), python_dir / "ipa_client")
    generate_typescript(program(args.npm), typescript_dir)
    if args.generate_only:
        return 0

    with LiveServer(args.ipa, args.work_dir / "server", workers=2) as server:
        server.create_normal_user()
        env = {
            **os.environ,
            "IPA_URL": server.base,
            "IPA_USERNAME": NORMAL_USER["username"],
            "IPA_PASSWORD": NORMAL_USER["password"],
        }
        run(
            [sys.executable, HERE / "python/scenario.py"],
            env={**env, "PYTHONPATH": str(python_dir)},
        )
        run(["node", typescript_dir / "dist/scenario.js"], env=env)
    print("\nBoth generated clients drove the scenario through.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as err:
        sys.exit(f"failed ({err.returncode}): {' '.join(str(part) for part in err.cmd)}")
