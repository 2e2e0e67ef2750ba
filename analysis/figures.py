"""Numbers made ready for JSON: a distribution's summary (``describe``) and numpy values as plain
JSON types (``jsonable``), for results.json and the Explore tab's download."""

import numpy as np


def describe(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": v.mean(), "std": v.std(), "min": v.min(), "median": np.median(v), "max": v.max()}


def jsonable(obj):
    """Nested dicts, lists, tuples and numpy values -> plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in obj]
    return obj.item() if isinstance(obj, np.generic) else obj
