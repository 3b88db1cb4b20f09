"""Safeguarded Anderson acceleration of the ADMM round (type II).

The coordinator's round is a fixed-point map ``f = G(s)`` on its state ``s = (z, lambda/rho)``
(plans and scaled prices, both in units). Anderson acceleration (D. G. Anderson, J. ACM 12(4),
1965; as used for ADMM/Douglas-Rachford by A. Fu, J. Zhang, S. Boyd, "Anderson Accelerated
Douglas-Rachford Splitting", SIAM J. Sci. Comput. 42(6), 2020) extrapolates from the last ``m``
pairs ``(s_j, f_j)`` with residuals ``g_j = f_j - s_j``:

    gamma = argmin ||g_k - dG gamma||^2,   s_next = f_k - dF gamma,

where ``dG`` and ``dF`` hold successive differences. Safeguard: the extrapolated point is kept
only if the next round's fixed-point residual does not exceed the last plain round's; otherwise
the coordinator falls back to the plain ADMM iterate and clears the memory (it is also cleared
whenever ``rho`` changes, since the scaled prices change with it).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from pivotal.arrays import FloatArray


class AndersonAccelerator:
    """Memory of recent ``(s, f)`` pairs and the type-II extrapolation."""

    def __init__(self, memory: int, regularization: float = 1e-10) -> None:
        self.memory = memory
        self.regularization = regularization
        self._s: deque[FloatArray] = deque(maxlen=memory + 1)
        self._f: deque[FloatArray] = deque(maxlen=memory + 1)

    def reset(self) -> None:
        """Forget the history."""
        self._s.clear()
        self._f.clear()

    def push(self, s: FloatArray, f: FloatArray) -> None:
        """Record one round: the state broadcast and the plain ADMM update from it."""
        self._s.append(s.copy())
        self._f.append(f.copy())

    def extrapolate(self) -> FloatArray | None:
        """The accelerated next state, or ``None`` with fewer than two pairs."""
        if len(self._s) < 2:
            return None
        # one row per round (contiguous differences; the state is long, the memory short)
        f = np.stack(list(self._f))
        g = f - np.stack(list(self._s))
        d_g = g[1:] - g[:-1]
        d_f = f[1:] - f[:-1]
        gram = d_g @ d_g.T
        reg = self.regularization * max(1.0, float(np.trace(gram)))
        try:
            gamma = np.linalg.solve(gram + reg * np.eye(gram.shape[0]), d_g @ g[-1])
        except np.linalg.LinAlgError:
            return None
        candidate = f[-1] - gamma @ d_f
        if not np.all(np.isfinite(candidate)):
            return None
        return np.asarray(candidate, dtype=np.float64)
