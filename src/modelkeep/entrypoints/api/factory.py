"""The app factory uvicorn calls in each worker process of ``modelkeep server --workers N``.

Worker processes are started fresh, so they read their settings from the environment
(``MODELKEEP_*``), which ``modelkeep server`` fills in from its own options first.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from modelkeep.bootstrap import open_server
from modelkeep.config import Settings
from modelkeep.entrypoints.api.app import create_app


def app_from_environment() -> FastAPI:
    state = open_server(Settings.from_env(os.environ))
    return create_app(state)  # closed with the worker process
