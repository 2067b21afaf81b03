"""``modelkeep gateway``: serves every model deployed to one environment, routing each
request between the versions of its desired state (stable, canary, A/B, shadow).

- ``ports.py``: what it needs (``Predictor``, ``PredictorLoader``, ``DesiredStateSource``);
- ``sources.py``: the registry's long-polled HTTP feed, and an in-memory source;
- ``loaders.py``: loading versions through the SDK (``mk.load``) by digest;
- ``serving.py``: the loaded desired states, swapped whole, and the shadow queue;
- ``tensors.py``: V2 and MLflow bodies to inputs checked against the signature;
- ``metrics.py``: Prometheus text; ``app.py``: the Starlette routes.

Routing decisions themselves are pure: ``modelkeep.domain.routing``.
"""
