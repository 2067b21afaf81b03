"""``modelkeep server``: the HTTP API on this store (embedded by default, or PostgreSQL and
any blob store through MODELKEEP_DATABASE_URL and MODELKEEP_BLOB_URL)."""

from __future__ import annotations

import os

import click

from modelkeep.entrypoints.cli.context import err_console, state


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes; more than one uses more cores.",
)
def server(host: str, port: int, workers: int) -> None:
    """Serve the registry over HTTP until interrupted.

    It serves the store that --uri names (default ./.modelkeep: SQLite and blobs in that
    directory, made if missing), or the database of MODELKEEP_DATABASE_URL with the blob
    store of MODELKEEP_BLOB_URL (see docs/configuration.md).

    Every endpoint but /healthz and /readyz needs a bearer token. Make the first admin
    and its token on the same store before (or while) serving; the token is printed once:

    \b
        modelkeep --uri STORE users create alice --role admin
        export MODELKEEP_TOKEN=...   # on the client
        modelkeep --uri http://127.0.0.1:8080 models list
    """
    import uvicorn  # the server's own dependency: loaded only when serving

    from modelkeep.bootstrap import open_server
    from modelkeep.entrypoints.api.app import create_app

    settings = state().settings
    server_state = open_server(settings)  # also migrates once, before any worker
    err_console.print(f"modelkeep server on http://{host}:{port} (store {settings.uri})")
    if workers > 1:
        server_state.close()
        os.environ["MODELKEEP_URI"] = settings.uri  # the workers read their settings anew
        uvicorn.run(
            "modelkeep.entrypoints.api.factory:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )
        return
    try:
        uvicorn.run(
            create_app(server_state), host=host, port=port, log_level="warning", access_log=False
        )
    finally:
        server_state.close()
