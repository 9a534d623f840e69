"""Drift detection (tabular CUSUM or Page-Hinkley) with a latched, two-sided signal.

See the package docstring for the contract.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from edge_agent.readings import Quality

from .base import (
    DRIFT_VALUES,
    DriftMethod,
    Event,
    Output,
    State,
    StateValue,
    Value,
    _bool,
    _float,
    _Indicator,
    _int,
    _keys,
    _opt_float,
)

# -- 5b. drift: CUSUM or Page-Hinkley --------------------------------------------------------------


class DriftDetector(_Indicator):
    """Two-sided drift detection, ``method`` "cusum" (default) or "page_hinkley".

    CUSUM (tabular, ISO 7870-4): C+ = max(0, x - (mu0 + k sigma) + C+prev),
    C- = max(0, (mu0 - k sigma) - x + C-prev); drift up when C+ > h sigma, down when
    C- > h sigma. ``mu0`` and ``sigma`` are either given, or learned from the first good readings
    (at least ``learn_n`` readings and ``learn_s`` seconds: mean, and sample standard deviation
    with n - 1, floored at ``sigma_min``) and then frozen; learning readings do not feed the
    sums. A signal means "deviates from the baseline" and stays while the level stays shifted.

    Page-Hinkley: with the running mean xbar_t of the readings since the last (re)baseline,
    m+ += x - xbar_t - delta, PH+ = m+ - min(m+); m- += x - xbar_t + delta,
    PH- = max(m-) - m-; drift when PH > lambda_ (``delta`` and ``lambda_`` in x units), not
    before ``learn_n`` readings and ``learn_s`` seconds. A signal means "the level changed".
    The running mean spans every reading since the last (re)baseline, so after a lasting step
    the statistic returns to 0 only slowly (a return to the old level is signalled as a change
    the other way): call `rebaseline` to accept a new level.

    A drift latches (event drift_detected, detail "up"/"down", with the reading's value and the
    limit). It clears (event drift_cleared) when its statistic is back to 0 (``auto_clear``;
    CUSUM: the excess has been used up, the process is back near mu0), or at `rebaseline`.
    Uncertain while learning. Both statistics are per reading: with irregular polls the
    detection delay in time scales with the poll period.
    """

    __slots__ = (
        "_dn",
        "_drift_dn",
        "_drift_up",
        "_learn_m2",
        "_learn_mean",
        "_learn_n",
        "_learn_t0",
        "_m_dn",
        "_m_up",
        "_mu0",
        "_ph_mean",
        "_ph_n",
        "_sigma",
        "_up",
        "_xtr_dn",
        "_xtr_up",
        "auto_clear",
        "delta",
        "h",
        "k",
        "lambda_",
        "learn_n",
        "learn_s",
        "method",
        "mu0",
        "sigma",
        "sigma_min",
    )
    KIND = "drift"
    VALUES = DRIFT_VALUES
    KEYS = _keys(DRIFT_VALUES)

    def __init__(
        self,
        *,
        method: DriftMethod = "cusum",
        mu0: float | None = None,
        sigma: float | None = None,
        k: float = 0.5,
        h: float = 5.0,
        delta: float | None = None,
        lambda_: float | None = None,
        learn_n: int = 30,
        learn_s: float = 0.0,
        sigma_min: float = 0.0,
        auto_clear: bool = True,
    ) -> None:
        if method not in ("cusum", "page_hinkley"):
            raise ValueError(f"method must be 'cusum' or 'page_hinkley', got {method!r}")
        if method == "page_hinkley" and (delta is None or lambda_ is None):
            raise ValueError("page_hinkley needs delta and lambda_ (in the input's unit)")
        if method == "cusum" and sigma is None and learn_n < 2:
            raise ValueError("learning sigma needs learn_n >= 2")
        if sigma is not None and not sigma > 0.0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        if k < 0.0 or h <= 0.0 or learn_n < 0 or learn_s < 0.0 or sigma_min < 0.0:
            raise ValueError("k, learn_n, learn_s, sigma_min must be >= 0 and h > 0")
        super().__init__()
        self.method: DriftMethod = method
        self.mu0 = None if mu0 is None else float(mu0)
        self.sigma = None if sigma is None else float(sigma)
        self.k, self.h = float(k), float(h)
        self.delta = None if delta is None else float(delta)
        self.lambda_ = None if lambda_ is None else float(lambda_)
        self.learn_n, self.learn_s, self.sigma_min = learn_n, learn_s, sigma_min
        self.auto_clear = auto_clear
        self._reset(relearn=True)
        self._refresh()

    def _reset(self, relearn: bool) -> None:
        self._up = self._dn = 0.0
        self._drift_up = self._drift_dn = False
        self._m_up = self._m_dn = self._xtr_up = self._xtr_dn = 0.0
        if relearn:
            self._mu0, self._sigma = self.mu0, self.sigma
            self._learn_n = 0
            self._learn_mean = self._learn_m2 = 0.0
            self._learn_t0: float | None = None
            self._ph_n = 0
            self._ph_mean = 0.0

    @property
    def learning(self) -> bool:
        """True while the baseline is being learned (no drift can be signalled)."""
        if self.method == "cusum":
            return self._mu0 is None or self._sigma is None
        t0, last = self._learn_t0, self._last_t
        return self._ph_n < self.learn_n or t0 is None or last is None or last - t0 < self.learn_s

    def _limit(self) -> float | None:
        if self.method == "page_hinkley":
            return self.lambda_
        return None if self._sigma is None else self.h * self._sigma

    def update(self, t: float, x: float | bool | None, good: bool = True) -> Output:
        """Add one reading; see the package doc for skipped readings."""
        xf = self._accept(t, x, good)
        if xf is None:
            return self._skip()
        if self._learn_t0 is None:
            self._learn_t0 = t
        if self.method == "cusum":
            if self._mu0 is None or self._sigma is None:
                self._learn(t, xf)
                return self._emit(self._state_values(), Quality.UNCERTAIN)
            ks = self.k * self._sigma
            self._up = max(0.0, xf - (self._mu0 + ks) + self._up)
            self._dn = max(0.0, (self._mu0 - ks) - xf + self._dn)
        else:
            self._page_hinkley(xf)
        if self.learning:
            return self._emit(self._state_values(), Quality.UNCERTAIN)
        limit = self._limit()
        assert limit is not None
        events: list[Event] = []
        for side, stat in (("up", self._up), ("down", self._dn)):
            latched = self._drift_up if side == "up" else self._drift_dn
            if not latched and stat > limit:
                latched = True
                events.append(Event("drift_detected", xf, limit, t, side))
            elif latched and self.auto_clear and stat <= 0.0:
                latched = False
                events.append(Event("drift_cleared", xf, limit, t, side))
            if side == "up":
                self._drift_up = latched
            else:
                self._drift_dn = latched
        return self._emit(self._state_values(), Quality.GOOD, tuple(events))

    def _learn(self, t: float, xf: float) -> None:
        self._learn_n += 1
        d = xf - self._learn_mean
        self._learn_mean += d / self._learn_n
        self._learn_m2 += d * (xf - self._learn_mean)
        t0 = self._learn_t0
        if self._learn_n >= max(self.learn_n, 1) and t0 is not None and t - t0 >= self.learn_s:
            if self._mu0 is None:
                self._mu0 = self._learn_mean
            if self._sigma is None:
                s = math.sqrt(self._learn_m2 / (self._learn_n - 1)) if self._learn_n > 1 else 0.0
                self._sigma = max(s, self.sigma_min)

    def _page_hinkley(self, xf: float) -> None:
        delta = self.delta
        assert delta is not None
        self._ph_n += 1
        self._ph_mean += (xf - self._ph_mean) / self._ph_n
        dev = xf - self._ph_mean
        self._m_up += dev - delta
        self._xtr_up = min(self._xtr_up, self._m_up)
        self._up = self._m_up - self._xtr_up
        self._m_dn += dev + delta
        self._xtr_dn = max(self._xtr_dn, self._m_dn)
        self._dn = self._xtr_dn - self._m_dn

    def rebaseline(self, t: float, *, relearn: bool = True) -> Output:
        """Clear any latched drift (drift_cleared events at ``t``) and zero the statistics.

        ``relearn`` (default): also forget what was learned: CUSUM learns again the mu0/sigma
        that were not given; Page-Hinkley restarts its running mean and warm-up. Use it after
        maintenance or a deliberate change of operating point. ``relearn=False`` only restarts
        the statistics against the same baseline.
        """
        limit = self._limit()
        events = tuple(
            Event("drift_cleared", None, limit, t, side)
            for side, latched in (("up", self._drift_up), ("down", self._drift_dn))
            if latched
        )
        self._reset(relearn)
        quality = Quality.UNCERTAIN if self.learning else Quality.GOOD
        return self._emit(self._state_values(), quality, events)

    def _state_values(self) -> dict[str, Value]:
        up, dn = self._drift_up, self._drift_dn
        cusum = self.method == "cusum"
        return {
            "drift": up or dn,
            "direction": "both" if up and dn else "up" if up else "down" if dn else None,
            "stat_up": self._up,
            "stat_down": self._dn,
            "limit": self._limit(),
            "mu0": self._mu0 if cusum else (self._ph_mean if self._ph_n else None),
            "sigma": self._sigma if cusum else None,
            "learning": self.learning,
        }

    def state(self) -> State:
        """JSON-safe state: baseline, learning sums, statistics and latched sides."""
        return self._base_state() | {
            "mu0": self._mu0,
            "sigma": self._sigma,
            "learn_n": self._learn_n,
            "learn_mean": self._learn_mean,
            "learn_m2": self._learn_m2,
            "learn_t0": self._learn_t0,
            "up": self._up,
            "down": self._dn,
            "m_up": self._m_up,
            "m_down": self._m_dn,
            "extreme_up": self._xtr_up,
            "extreme_down": self._xtr_dn,
            "ph_n": self._ph_n,
            "ph_mean": self._ph_mean,
            "drift_up": self._drift_up,
            "drift_down": self._drift_dn,
        }

    def restore(self, state: Mapping[str, StateValue]) -> None:
        """Continue from `state` (from an object built with the same parameters)."""
        self._restore_base(state)
        self._mu0, self._sigma = _opt_float(state, "mu0"), _opt_float(state, "sigma")
        self._learn_n = _int(state, "learn_n")
        self._learn_mean, self._learn_m2 = _float(state, "learn_mean"), _float(state, "learn_m2")
        self._learn_t0 = _opt_float(state, "learn_t0")
        self._up, self._dn = _float(state, "up"), _float(state, "down")
        self._m_up, self._m_dn = _float(state, "m_up"), _float(state, "m_down")
        self._xtr_up, self._xtr_dn = _float(state, "extreme_up"), _float(state, "extreme_down")
        self._ph_n, self._ph_mean = _int(state, "ph_n"), _float(state, "ph_mean")
        self._drift_up, self._drift_dn = _bool(state, "drift_up"), _bool(state, "drift_down")
        self._refresh()
