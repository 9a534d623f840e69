"""Time of the waveform indicator set on one window, in this process.

    python -m bench.indicators [--runs 300] [--fs 25600]

For windows of 4,096 and 16,384 samples of a synthetic acceleration signal (1x, a bearing-like
impact train ringing at 3 kHz, noise) it times `vibration_indicators` with everything on
(shaft speed, a 6205 bearing, two bands, an ISO 10816-3 table) and, to show where the time
goes, its stages alone. Each figure is the median of `--runs` calls, with the min and max,
after warm-up calls (which also fill the per-(N, fs) caches). Target: the full set on 16,384
samples in under 10 ms. A benchmark, not a test: it always exits 0 and says whether the target
was met.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.indicators.bearing import (
    BearingGeometry,
    DefectFrequencies,
    DefectLine,
    defect_frequencies,
    defect_lines,
)
from edge_agent.indicators.iso10816 import iso10816_3_table
from edge_agent.indicators.spectrum import envelope_spectrum, power_spectrum
from edge_agent.indicators.vibration import vibration_indicators
from edge_agent.indicators.waveform import waveform_features

SIZES = (4096, 16_384)
TARGET_MS = 10.0  # full set, 16,384 samples
WARMUP = 20
SHAFT_HZ = 29.95
BEARING = BearingGeometry(balls=9, ball_diameter=0.3126, pitch_diameter=1.537)
BANDS = [(10.0, 1000.0), (1000.0, 10_000.0)]


def signal(n: int, fs: float) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(n)
    t = np.arange(n) / fs
    x = 0.5 * np.sin(2 * np.pi * SHAFT_HZ * t) + rng.normal(0.0, 1.0, n)
    bpfo = defect_frequencies(BEARING, SHAFT_HZ).bpfo
    phase = (t * bpfo) % 1.0
    x += 3.0 * np.exp(-phase / bpfo / 8e-4) * np.sin(2 * np.pi * 3000.0 * t)
    return x


def _envelope_lines(
    x: npt.NDArray[np.float64], fs: float, freqs: DefectFrequencies
) -> tuple[DefectLine, ...]:
    return defect_lines(envelope_spectrum(x, fs), freqs)


def time_ms(fn: Callable[[], object], runs: int) -> tuple[float, float, float]:
    for _ in range(WARMUP):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(samples), min(samples), max(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="timed calls per figure")
    parser.add_argument("--fs", type=float, default=25_600.0, help="sample rate, Hz")
    args = parser.parse_args(argv)
    fs: float = args.fs
    iso = iso10816_3_table(2, "rigid")

    print(f"vibration indicators, fs = {fs:g} Hz, {args.runs} runs each (median [min-max], ms)")
    print(f"{'stage':<34}" + "".join(f"{f'N = {n:,}':>26}" for n in SIZES))
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for n in SIZES:
        x = signal(n, fs)
        freqs = defect_frequencies(BEARING, SHAFT_HZ)
        stages: dict[str, Callable[[], object]] = {
            "waveform features": partial(waveform_features, x),
            "power spectrum": partial(power_spectrum, x, fs),
            "envelope spectrum + bearing lines": partial(_envelope_lines, x, fs, freqs),
            "FULL SET (vibration_indicators)": partial(
                vibration_indicators,
                x,
                fs,
                shaft_hz=SHAFT_HZ,
                bearing=BEARING,
                bands=BANDS,
                iso=iso,
            ),
        }
        for name, fn in stages.items():
            rows.setdefault(name, []).append(time_ms(fn, args.runs))
    for name, figures in rows.items():
        cells = "".join(f"{f'{m:.3f} [{lo:.3f}-{hi:.3f}]':>26}" for m, lo, hi in figures)
        print(f"{name:<34}{cells}")

    full = rows["FULL SET (vibration_indicators)"][SIZES.index(16_384)][0]
    verdict = "met" if full < TARGET_MS else "MISSED"
    print(f"\ntarget: full set on 16,384 samples < {TARGET_MS:g} ms: {full:.3f} ms ({verdict})")
    # The machine is shared: a high load shows in the medians and maxima, not in the minima.
    scalar_costs()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average at the end: {load} ({os.cpu_count()} CPUs)")
    return 0


def scalar_costs(readings: int = 50_000) -> None:
    """CPU per reading of each scalar (streaming) indicator, fed a noisy temperature at 1 Hz."""
    from edge_agent.indicators import streaming as s

    makers: dict[str, Callable[[], Any]] = {
        "stats (window 10 min)": lambda: s.RollingStats(600.0),
        "running_hours": lambda: s.RunningHours(max_gap_s=60.0, running_above=60.0),
        "threshold (ISA-18.2)": lambda: s.ThresholdAlarm(high=85.0, deadband=5.0, on_delay_s=10.0),
        "rate (window 15 min)": lambda: s.RateOfChange(900.0),
        "ewma": lambda: s.Ewma(3600.0),
        "drift (CUSUM)": lambda: s.DriftDetector(learn_n=30),
        "trend (window 6 h)": lambda: s.LinearTrend(6 * 3600.0, limit=95.0),
    }
    rng = np.random.default_rng(1)
    xs = (60 + rng.normal(0, 0.5, readings)).tolist()
    print(f"\nscalar indicators: CPU per reading (us), {readings:,} readings at 1 Hz")
    for name, make in makers.items():
        ind = make()
        update = ind.update
        started = time.process_time()
        for i, x in enumerate(xs):
            update(float(i), x, True)
        per = (time.process_time() - started) / readings * 1e6
        print(f"  {name:<26}{per:8.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
