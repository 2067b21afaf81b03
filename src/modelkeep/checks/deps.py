"""Optional heavy libraries (scikit-learn, skops, onnxruntime, fairlearn, PyYAML), imported
only when a check needs them, so that ``import modelkeep`` stays fast and works without."""

from __future__ import annotations

import importlib
from typing import Any

from modelkeep.errors import CheckFailed

INSTALL_HINT = "pip install 'modelkeep[checks]'"
PACKAGE_OF = {
    "sklearn": "scikit-learn",
    "skops": "skops",
    "onnxruntime": "onnxruntime",
    "fairlearn": "fairlearn",
    "yaml": "PyYAML",
    "pandas": "pandas",
    "numpy": "numpy",
}


def require(module: str) -> Any:
    """The imported module, or CheckFailed naming the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = PACKAGE_OF.get(module.split(".")[0], module)
        raise CheckFailed(f"{package} is not installed", INSTALL_HINT) from None
