"""``make run``: start the registry server on the embedded store in ./.modelkeep.

The first time, it seeds the store with the guided example (examples/quickstart.py), so
there is a model to look at. Every time, it makes a fresh admin token, prints the URL and
the token, and serves until interrupted (Ctrl-C).
"""

from __future__ import annotations

import os

import quickstart

import modelkeep
from modelkeep.entrypoints.cli import main as cli_main
from modelkeep.errors import UserExists

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "8080")
ADMIN = "admin"


def admin_token(mk: modelkeep.Client) -> str:
    try:
        _, issued = mk.create_user(ADMIN, role="admin")
    except UserExists:
        issued = mk.create_token(ADMIN, label="make run")
    return issued.secret


def main() -> None:
    with modelkeep.connect() as mk:
        empty = not mk.list_models()
    if empty:
        print("The store is empty: seeding it with the guided example first.")
        quickstart.main()
    with modelkeep.connect() as mk:
        token = admin_token(mk)
    url = f"http://{HOST}:{PORT}"
    print(
        f"""
modelkeep server: {url}   (API under {url}/api/v1, OpenAPI at {url}/openapi.json)
admin token:      {token}

Use it from another shell:
  export MODELKEEP_URI={url} MODELKEEP_TOKEN={token}
  .venv/bin/modelkeep models list
  curl -H "Authorization: Bearer $MODELKEEP_TOKEN" {url}/api/v1/resolve?ref=churn@production
""",
        flush=True,
    )
    cli_main(["server", "--host", HOST, "--port", PORT])


if __name__ == "__main__":
    main()
