"""The time window shared by the windowed indicators: samples, coverage and running sums.

Its conventions (half-open windows, coverage, shifted running sums and when they are
recomputed) are in the package docstring.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final

from .base import State, StateValue, _float, _floats, _int

_CANCELLATION: Final = 1e-4
"""Recompute a window's sums when n * variance < this * (sum of the squares that cancelled)."""


# -- shared machinery ------------------------------------------------------------------------------


def _check_window(window_s: float, min_coverage: float, max_gap_s: float | None) -> None:
    if not (math.isfinite(window_s) and window_s > 0.0):
        raise ValueError(f"window_s must be a positive number of seconds, got {window_s}")
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be in [0, 1], got {min_coverage}")
    if max_gap_s is not None and not max_gap_s > 0.0:
        raise ValueError(f"max_gap_s must be positive or None, got {max_gap_s}")


class _Window:
    """Good samples in (t - span, t] with coverage and shifted running sums (see package doc).

    ``moments``: 0 keeps no sums, 1 keeps sums of v = x - x_ref, 2 also of u = t - t_ref.
    ``mag`` adds up v^2 of every sample added or removed since the last exact recompute: the
    size of the terms that cancel in svv - sv^2/n, so the rounding error is about
    eps * mag. An eviction that leaves n * variance below ``_CANCELLATION * mag`` (a sample
    100 sigma away has left) triggers a recompute, as does a full turnover of the window.
    """

    __slots__ = (
        "buf",
        "covered",
        "evicted",
        "mag",
        "max_gap",
        "moments",
        "span",
        "su",
        "suu",
        "suv",
        "sv",
        "svv",
        "t_ref",
        "x_ref",
    )

    def __init__(self, span: float, max_gap: float | None, moments: int) -> None:
        self.span = span
        self.max_gap = max_gap
        self.moments = moments
        self.buf: deque[tuple[float, float, float]] = deque()  # (t, x, credit to previous)
        self.covered = 0.0  # sum of the credits of all samples but the oldest
        self.evicted = 0  # samples gone since the last exact recompute
        self.t_ref = 0.0
        self.x_ref = 0.0
        self.su = self.sv = self.suu = self.suv = self.svv = self.mag = 0.0

    def _credit(self, dt: float) -> float:
        mg = self.max_gap
        return dt if mg is None or dt <= mg else mg

    def push(self, t: float, x: float) -> None:
        buf = self.buf
        if buf:
            c = t - buf[-1][0]
            mg = self.max_gap
            if mg is not None and c > mg:
                c = mg
            self.covered += c
        else:
            c = 0.0
            self.covered = 0.0
            self.evicted = 0
            self.t_ref = t
            self.x_ref = x
            self.su = self.sv = self.suu = self.suv = self.svv = self.mag = 0.0
        buf.append((t, x, c))
        if self.moments:
            v = x - self.x_ref
            vv = v * v
            self.sv += v
            self.svv += vv
            self.mag += vv
            if self.moments == 2:
                u = t - self.t_ref
                self.su += u
                self.suu += u * u
                self.suv += u * v

    def expire(self, t_now: float, on_evict: Callable[[float], None] | None = None) -> None:
        """Drop the samples at or before t_now - span (``on_evict`` sees each x dropped)."""
        cutoff = t_now - self.span
        buf = self.buf
        if not buf or buf[0][0] > cutoff:
            return
        moments = self.moments
        while buf and buf[0][0] <= cutoff:
            t, x, _ = buf.popleft()
            if buf:
                self.covered -= buf[0][2]
            self.evicted += 1
            if moments:
                v = x - self.x_ref
                vv = v * v
                self.sv -= v
                self.svv -= vv
                self.mag += vv
                if moments == 2:
                    u = t - self.t_ref
                    self.su -= u
                    self.suu -= u * u
                    self.suv -= u * v
            if on_evict is not None:
                on_evict(x)
        n = len(buf)
        if n and (
            self.evicted >= n
            or (moments and self.svv - self.sv * self.sv / n < _CANCELLATION * self.mag)
        ):
            self.recompute()

    def recompute(self) -> None:
        """Exact sums from the window, relative to its mean time and mean value."""
        buf = self.buf
        n = len(buf)
        t_ref = math.fsum(t for t, _, _ in buf) / n
        x_ref = math.fsum(x for _, x, _ in buf) / n
        self.t_ref, self.x_ref = t_ref, x_ref
        self.covered = math.fsum(c for _, _, c in itertools.islice(buf, 1, None))
        su = sv = suu = suv = svv = 0.0
        for t, x, _ in buf:
            v = x - x_ref
            u = t - t_ref
            sv += v
            svv += v * v
            su += u
            suu += u * u
            suv += u * v
        self.sv, self.svv, self.mag = sv, svv, svv
        if self.moments == 2:
            self.su, self.suu, self.suv = su, suu, suv
        self.evicted = 0

    def coverage_ok(self, min_coverage: float) -> bool:
        return self.covered >= min_coverage * self.span

    def state(self) -> State:
        return {
            "t": [t for t, _, _ in self.buf],
            "x": [x for _, x, _ in self.buf],
            "covered": self.covered,
            "evicted": self.evicted,
            "t_ref": self.t_ref,
            "x_ref": self.x_ref,
            "su": self.su,
            "sv": self.sv,
            "suu": self.suu,
            "suv": self.suv,
            "svv": self.svv,
            "mag": self.mag,
        }

    def restore(self, state: Mapping[str, StateValue]) -> None:
        ts, xs = _floats(state, "t"), _floats(state, "x")
        if len(ts) != len(xs):
            raise ValueError("state: window lists 't' and 'x' differ in length")
        self.buf.clear()
        prev: float | None = None
        for t, x in zip(ts, xs, strict=True):
            self.buf.append((t, x, 0.0 if prev is None else self._credit(t - prev)))
            prev = t
        self.covered = _float(state, "covered")
        self.evicted = _int(state, "evicted")
        self.t_ref, self.x_ref = _float(state, "t_ref"), _float(state, "x_ref")
        self.su, self.sv = _float(state, "su"), _float(state, "sv")
        self.suu, self.suv, self.svv = (_float(state, k) for k in ("suu", "suv", "svv"))
        self.mag = _float(state, "mag")
