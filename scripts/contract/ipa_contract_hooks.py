"""Schemathesis hooks for the IPA Platform's contract run (scripts/contract/run_schemathesis.py).

Every generated request is sent with a bearer token of the account the run acts as
(`IPA_CONTRACT_IDENTIFIER` and `IPA_CONTRACT_PASSWORD` on the server at `IPA_CONTRACT_URL`).
The token is fetched by signing in, and fetched again whenever a request answers 401: the
generated traffic includes `POST /auth/logout`, which ends the session it is sent with.
"""

import json
import os
import sys
import urllib.error
import urllib.request

import schemathesis

BASE_URL = os.environ["IPA_CONTRACT_URL"]
IDENTIFIER = os.environ["IPA_CONTRACT_IDENTIFIER"]
PASSWORD = os.environ["IPA_CONTRACT_PASSWORD"]


def sign_in() -> str:
    """A new session's bearer token for the run's account."""
    body = json.dumps({"identifier": IDENTIFIER, "password": PASSWORD}).encode()
    request = urllib.request.Request(
        f"{BASE_URL}/auth/login",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["access_token"]
    except urllib.error.HTTPError as err:
        # Schemathesis reports only that the fetch failed: say why.
        print(f"signing in as {IDENTIFIER} failed: {err.code} {err.read()[:300]!r}", file=sys.stderr)
        raise


# Schemathesis caches the token and asks for a new one when a request answers 401.
@schemathesis.auth().skip_for(path="/auth/login")
class BearerToken:
    """The run's account's token."""

    def get(self, case, context):
        return sign_in()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
