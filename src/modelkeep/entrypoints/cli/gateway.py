"""``modelkeep gateway``: serve the models deployed to one environment."""

from __future__ import annotations

import click

from modelkeep.domain.deployments import check_env
from modelkeep.entrypoints.cli.context import err_console, state


@click.command()
@click.option("--env", required=True, help="The environment whose deployments to serve.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
def gateway(env: str, host: str, port: int) -> None:
    """Serve every model deployed to ENV until interrupted.

    It follows the desired states of ENV on the server that --uri (or MODELKEEP_URI)
    names, authenticated by MODELKEEP_TOKEN, loads each version by digest and verifies
    every byte before serving it, and routes requests between stable, canary (weighted
    or sticky A/B) and shadow. Endpoints: the Open Inference Protocol V2 under /v2,
    MLflow's scoring format on POST /invocations, Prometheus metrics on /metrics (see
    docs/serving.md).

    \b
        export MODELKEEP_URI=http://registry:8080 MODELKEEP_TOKEN=...
        modelkeep gateway --env prod --host 0.0.0.0 --port 8000
    """
    import uvicorn  # the server's own dependency: loaded only when serving

    import modelkeep.client.client as sdk
    from modelkeep.entrypoints.gateway.app import create_app
    from modelkeep.entrypoints.gateway.loaders import SdkPredictorLoader
    from modelkeep.entrypoints.gateway.serving import Gateway
    from modelkeep.entrypoints.gateway.sources import HttpDesiredStateSource

    settings = state().settings
    check_env(env)
    source = HttpDesiredStateSource(settings.uri, env, settings.token or None)
    loader = SdkPredictorLoader(lambda: sdk.connect(settings=settings, create=False))
    app = create_app(Gateway(env, loader, source=source))
    err_console.print(
        f"modelkeep gateway for {env} on http://{host}:{port} (registry {settings.uri})"
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        loader.close()
