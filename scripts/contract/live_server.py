"""A live IPA Platform server for the contract checks (Schemathesis, generated clients).

`LiveServer` starts `ipa serve` in embedded mode on a fresh data directory, with a bootstrap
superuser, waits until it is ready and stops it (and its PostgreSQL) on exit. Sign-in
throttling is lifted, since the checks sign in and fail to sign in by the thousand.
"""

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

ROOT = Path(__file__).resolve().parent.parent.parent

SUPERUSER = {
    "email": "contract-admin@ipa.local",
    "username": "contract-admin",
    "password": "contract-admin-password",
}
NORMAL_USER = {
    "email": "contract-user@ipa.local",
    "username": "contract-user",
    "password": "contract-user-password",
}


def program(name_or_path: str) -> str:
    """`name_or_path` as an absolute path when it names a file (`target/ci-python/bin/x`), so
    that it still runs from another working directory; a bare name is left to `PATH`."""
    if os.sep in name_or_path:
        return str(Path(name_or_path).resolve())
    return name_or_path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(base: str, method: str, path: str, body=None, token=None):
    """One JSON request; the status and the decoded body (the text when it is not JSON)."""
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


class LiveServer:
    """`ipa serve` on a fresh data directory under `work_dir`, as a context manager."""

    def __init__(self, ipa: Path, work_dir: Path, workers: int = 0):
        self.ipa = Path(program(str(ipa)))
        self.work_dir = work_dir
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = work_dir / "server.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "LiveServer":
        if self.work_dir.exists():
            shutil.rmtree(self.work_dir)
        self.work_dir.mkdir(parents=True)
        # The embedded PostgreSQL runs as another OS user when this runs as root: it must reach
        # its cluster inside the work directory.
        self.work_dir.chmod(0o755)
        env = dict(os.environ)
        for name in ("DATABASE_URL", "IPA_DATABASE_DIRECT_URL", "IPA_DB_POOLING"):
            env.pop(name, None)
        env.update(
            {
                "IPA_DATA_DIR": str(self.work_dir / "data"),
                "IPA_BIND": f"127.0.0.1:{self.port}",
                "IPA_WORKERS": str(self.workers),
                "IPA_WORKER_POLL_MS": "200",
                "IPA_BOOTSTRAP_ADMIN_EMAIL": SUPERUSER["email"],
                "IPA_BOOTSTRAP_ADMIN_USERNAME": SUPERUSER["username"],
                "IPA_BOOTSTRAP_ADMIN_PASSWORD": SUPERUSER["password"],
                "IPA_LOGIN_MAX_FAILURES": "1000000",
                "IPA_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
                "IPA_LOG_FORMAT": "json",
                "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
            }
        )
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(self.ipa), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready(within=180)
        return self

    def __exit__(self, *_exc) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def _wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                sys.exit(f"the server exited with {self.process.returncode} before it was ready; see {self.log}")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        sys.exit(f"the server was not ready within {within:.0f} s; see {self.log}")

    def sign_in(self, account: dict) -> str:
        status, body = call(
            self.base,
            "POST",
            "/auth/login",
            {"identifier": account["username"], "password": account["password"]},
        )
        if status != 200:
            sys.exit(f"{account['username']} cannot sign in: {status} {body}")
        return body["access_token"]

    def create_normal_user(self) -> None:
        """Creates `NORMAL_USER`, as the superuser."""
        status, body = call(self.base, "POST", "/users", NORMAL_USER, token=self.sign_in(SUPERUSER))
        if status != 201:
            sys.exit(f"cannot create the normal user: {status} {body}")
