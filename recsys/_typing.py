"""Array aliases shared across the library."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int32]
FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]

__all__ = ["IntArray", "FloatArray", "BoolArray"]
