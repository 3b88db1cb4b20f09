"""Array types shared by the numerical modules."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
"""A numpy array of 64-bit floats (plans, prices, residual vectors, model coefficients)."""

IntArray = npt.NDArray[np.int64]
"""A numpy array of 64-bit integers (indices, counts)."""
