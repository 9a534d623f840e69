"""Waveform indicators against analytic answers (docs/indicators.md), not against our own code.

Known answers: sine (RMS A/sqrt2, crest sqrt2, Pearson kurtosis 1.5, shape pi/(2 sqrt2),
impulse pi/2), square (kurtosis 1, crest 1), Gaussian (kurtosis 3), 1 g peak at 100 Hz =
11.036 mm/s RMS, an AM carrier's envelope line = m, the SKF 6205 defect orders, the ISO 10816
zone boundaries.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.indicators import units
from edge_agent.indicators.bearing import (
    BearingGeometry,
    defect_frequencies,
    defect_lines,
    line_amplitude,
)
from edge_agent.indicators.iso10816 import (
    TABLES,
    ZoneTable,
    iso10816_3_table,
    zone,
)
from edge_agent.indicators.spectrum import (
    band_rms,
    envelope_spectrum,
    hann,
    harmonic_amplitudes,
    power_spectrum,
    velocity_rms,
)
from edge_agent.indicators.vibration import band_key, vibration_indicators
from edge_agent.indicators.waveform import WAVEFORM_KEYS, waveform_features

FloatArray = npt.NDArray[np.float64]
G = 9.80665
SKF_6205 = BearingGeometry(balls=9, ball_diameter=0.3126, pitch_diameter=1.537)


def sine(amplitude: float, freq: float, fs: float, n: int, phase: float = 0.0) -> FloatArray:
    t = np.arange(n, dtype=np.float64) / fs
    return np.asarray(amplitude * np.sin(2 * np.pi * freq * t + phase), dtype=np.float64)


def num(result: dict[str, float | str], key: str) -> float:
    value = result[key]
    assert isinstance(value, float), key
    return value


# --- time-domain features ----------------------------------------------------------------


def sine_clearance() -> float:
    # peak / mean(sqrt|sin|)**2, with mean(sqrt|sin|) = (2/pi) * int_0^{pi/2} sin^(1/2)
    # = (2/pi) * sqrt(pi) Gamma(3/4) / (2 Gamma(5/4)).
    mean_sqrt = (2 / math.pi) * math.sqrt(math.pi) * math.gamma(0.75) / (2 * math.gamma(1.25))
    return 1 / mean_sqrt**2


@pytest.mark.parametrize(("amplitude", "offset"), [(1.0, 0.0), (3.7, 0.0), (0.02, 5.0)])
def test_sine_features(amplitude: float, offset: float) -> None:
    # 4000 samples per period, 10 whole periods: moments are exact; sums of |x| and sqrt|x|
    # approximate their integrals to 1e-6 and 2e-5 (sqrt has an infinite slope at 0).
    x = offset + sine(amplitude, 1.0, 4000.0, 40000)
    f = waveform_features(x)
    assert f["mean"] == pytest.approx(offset, abs=1e-12)
    assert f["rms"] == pytest.approx(amplitude / math.sqrt(2), rel=1e-9)
    assert f["peak"] == pytest.approx(amplitude, rel=1e-9)
    assert f["p2p"] == pytest.approx(2 * amplitude, rel=1e-9)
    assert f["crest_factor"] == pytest.approx(math.sqrt(2), rel=1e-9)
    assert f["kurtosis"] == pytest.approx(1.5, rel=1e-9)
    assert f["skewness"] == pytest.approx(0.0, abs=1e-9)
    assert f["shape_factor"] == pytest.approx(math.pi / (2 * math.sqrt(2)), rel=1e-6)
    assert f["shape_factor"] == pytest.approx(1.110721, rel=1e-6)
    assert f["impulse_factor"] == pytest.approx(math.pi / 2, rel=1e-6)
    assert f["clearance_factor"] == pytest.approx(sine_clearance(), rel=1e-4)


def test_square_wave_features() -> None:
    x = np.tile([2.5, 2.5, -2.5, -2.5], 1000) + 1.0
    f = waveform_features(x)
    assert f["mean"] == pytest.approx(1.0)
    for key in ("crest_factor", "kurtosis", "shape_factor", "impulse_factor", "clearance_factor"):
        assert f[key] == pytest.approx(1.0, rel=1e-12), key
    assert f["rms"] == pytest.approx(2.5)
    assert f["skewness"] == pytest.approx(0.0, abs=1e-12)


def test_triangle_wave_kurtosis_is_pearson_1_8() -> None:
    period = 1000
    ramp = np.arange(period) / period
    x = np.tile(np.abs(2 * ramp - 1), 20)  # triangle, uniformly distributed values
    f = waveform_features(x)
    assert f["kurtosis"] == pytest.approx(1.8, rel=1e-4)
    assert f["crest_factor"] == pytest.approx(math.sqrt(3), rel=1e-3)


def test_gaussian_noise_kurtosis_about_3() -> None:
    x = np.random.default_rng(20240611).normal(0.0, 2.0, 200_000)
    f = waveform_features(x)
    assert f["kurtosis"] == pytest.approx(3.0, abs=0.05)  # Pearson, not excess (0)
    assert f["skewness"] == pytest.approx(0.0, abs=0.02)
    assert f["rms"] == pytest.approx(2.0, rel=0.01)
    assert f["shape_factor"] == pytest.approx(math.sqrt(math.pi / 2), rel=0.01)


def test_laplace_noise_kurtosis_about_6() -> None:
    x = np.random.default_rng(7).laplace(0.0, 1.0, 400_000)
    assert waveform_features(x)["kurtosis"] == pytest.approx(6.0, rel=0.05)


def test_impacts_raise_kurtosis_and_crest_and_skewness_sign() -> None:
    x = np.zeros(10_000)
    x[::1000] = 10.0
    x += np.random.default_rng(3).normal(0.0, 0.1, x.size)
    f = waveform_features(x)
    assert f["kurtosis"] > 50
    assert f["crest_factor"] > 10
    assert f["skewness"] > 5  # one-sided impacts: positive skew
    assert waveform_features(-x)["skewness"] == pytest.approx(-f["skewness"])


@pytest.mark.parametrize("value", [0.0, 0.1, -3.3e5])
def test_flat_window_has_zero_rms_and_nan_ratios(value: float) -> None:
    f = waveform_features(np.full(1000, value))
    assert list(f) == list(WAVEFORM_KEYS)
    assert f["mean"] == pytest.approx(value)
    assert (f["rms"], f["peak"], f["p2p"]) == (0.0, 0.0, 0.0)
    assert all(math.isnan(f[k]) for k in WAVEFORM_KEYS[4:])


@pytest.mark.parametrize(
    "bad", [np.array([]), np.zeros((4, 4)), np.array([1.0, math.nan]), np.array([math.inf])]
)
def test_bad_window_is_rejected(bad: FloatArray) -> None:
    with pytest.raises(ValueError, match="window"):
        waveform_features(bad)


@settings(max_examples=50, deadline=None)
@given(
    scale=st.floats(1e-3, 1e3) | st.floats(-1e3, -1e-3),
    offset=st.floats(-1e3, 1e3),
    seed=st.integers(0, 2**32 - 1),
)
def test_levels_scale_linearly_and_ratios_are_invariant(
    scale: float, offset: float, seed: int
) -> None:
    x = np.random.default_rng(seed).standard_t(5, 2048)
    base = waveform_features(x)
    moved = waveform_features(scale * x + offset)
    for key in ("rms", "peak", "p2p"):
        assert moved[key] == pytest.approx(abs(scale) * base[key], rel=1e-9)
    for key in ("crest_factor", "kurtosis", "shape_factor", "impulse_factor", "clearance_factor"):
        assert moved[key] == pytest.approx(base[key], rel=1e-6)
    assert moved["skewness"] == pytest.approx(math.copysign(1, scale) * base["skewness"], rel=1e-6)


# --- spectrum ------------------------------------------------------------------------------


def test_hann_is_the_periodic_window() -> None:
    w = hann(8)
    assert w == pytest.approx([0, 0.1464466, 0.5, 0.8535534, 1, 0.8535534, 0.5, 0.1464466])
    w = hann(1000)
    assert w.sum() == pytest.approx(500.0)  # N/2 exactly for the periodic form
    assert np.dot(w, w) == pytest.approx(375.0)  # 3N/8
    assert not w.flags.writeable


@pytest.mark.parametrize("n", [1000, 1001, 4096])
def test_power_spectrum_sums_to_the_windowed_mean_square(n: int) -> None:
    # Parseval: with DC and Nyquist not doubled, sum P_k = sum((d w)^2) / sum(w^2) exactly.
    x = np.random.default_rng(n).normal(0.5, 1.0, n)
    d = x - x.mean()
    w = hann(n)
    spec = power_spectrum(x, 1000.0)
    assert spec.power.size == n // 2 + 1
    assert spec.freqs[1] == pytest.approx(1000.0 / n)
    assert spec.power.sum() == pytest.approx(np.dot(d * w, d * w) / np.dot(w, w), rel=1e-12)


@pytest.mark.parametrize("offset_bins", [0.0, 0.1, 0.25, 0.37, 0.5, 0.75])
def test_band_rms_is_independent_of_bin_alignment(offset_bins: float) -> None:
    fs, n, amplitude = 10_000.0, 5000, 3.0
    f0 = (200 + offset_bins) * fs / n
    x = sine(amplitude, f0, fs, n, phase=0.3)
    spec = power_spectrum(x, fs)
    assert band_rms(spec, f0 - 50, f0 + 50) == pytest.approx(amplitude / math.sqrt(2), rel=2e-3)
    # The single-line peak reading does scallop (to 0.8488 at half a bin): what band RMS avoids.
    line_peak = math.sqrt(2 * spec.power.max() * np.dot(hann(n), hann(n)) / n) / 0.5
    off = min(offset_bins, 1 - offset_bins)  # from the nearest bin
    scallop = np.sinc(off) / (1 - off**2)
    assert line_peak == pytest.approx(amplitude * scallop, rel=2e-3)


def test_band_rms_separates_bands() -> None:
    fs, n = 8192.0, 8192
    x = sine(2.0, 100.0, fs, n) + sine(0.5, 2000.0, fs, n)
    spec = power_spectrum(x, fs)
    assert band_rms(spec, 10, 1000) == pytest.approx(2.0 / math.sqrt(2), rel=1e-3)
    assert band_rms(spec, 1000, 4000) == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)
    assert band_rms(spec, 10, 4000) == pytest.approx(math.sqrt(2.0**2 / 2 + 0.5**2 / 2), rel=1e-3)


@pytest.mark.parametrize(
    ("lo", "hi"),
    [(10.0, 1000.0), (10.3, 999.7), (0.0, 5000.0), (2.5, 2.5 + 1e-9), (4990.0, 5000.0)],
)
def test_band_edges_are_inclusive(lo: float, hi: float) -> None:
    fs, n = 10_000.0, 4000  # 2.5 Hz bins: 10, 1000 and 5000 Hz fall on bins
    spec = power_spectrum(np.random.default_rng(1).normal(size=n), fs)
    inside = (spec.freqs >= lo) & (spec.freqs <= hi)
    assert inside.any()
    assert band_rms(spec, lo, hi) == pytest.approx(math.sqrt(spec.power[inside].sum()), rel=1e-12)


@pytest.mark.parametrize("band", [(10.0, 5000.1), (-1.0, 100.0), (500.0, 500.0), (600.0, 500.0)])
def test_band_outside_0_to_nyquist_is_rejected(band: tuple[float, float]) -> None:
    spec = power_spectrum(np.random.default_rng(0).normal(size=1000), 10_000.0)
    with pytest.raises(ValueError, match="band"):
        band_rms(spec, *band)


@pytest.mark.parametrize(
    ("fs", "n"),
    [(25_600.0, 16_384), (10_000.0, 8192), (12_000.0, 12_000), (25_600.0, 10_000)],
)
def test_one_g_peak_at_100_hz_is_11_036_mm_s(fs: float, n: int) -> None:
    x = sine(1.0, 100.0, fs, n)  # 1 g peak
    spec = power_spectrum(units.g_to_m_s2(1.0) * x, fs)
    assert 1000 * velocity_rms(spec, 10, 1000) == pytest.approx(11.036, rel=0.01)
    result = vibration_indicators(x, fs, units="g")
    assert result["velocity_rms_mm_s"] == pytest.approx(11.036, rel=0.01)


@pytest.mark.parametrize("freq", [20.0, 57.3, 333.3, 800.0])
def test_velocity_is_acceleration_over_2_pi_f(freq: float) -> None:
    fs, n, accel = 25_600.0, 25_600, 4.0  # m/s2 peak
    x = sine(accel, freq, fs, n)
    expected = 1000 * accel / (2 * math.pi * freq) / math.sqrt(2)
    result = vibration_indicators(x, fs)
    assert result["velocity_rms_mm_s"] == pytest.approx(expected, rel=0.01)


def test_velocity_band_is_2_to_1000_hz_only_at_or_below_600_rpm() -> None:
    fs, n = 4096.0, 16_384  # 4 s: 0.25 Hz bins
    x = sine(1.0, 5.0, fs, n)  # 5 Hz, 1 m/s2 peak
    full = 1000 / (2 * math.pi * 5.0) / math.sqrt(2)
    slow = vibration_indicators(x, fs, shaft_hz=10.0)  # 600 r/min: 2-1000 Hz
    fast = vibration_indicators(x, fs, shaft_hz=10.01)  # above: 10-1000 Hz
    unknown = vibration_indicators(x, fs)
    assert slow["velocity_rms_mm_s"] == pytest.approx(full, rel=0.01)
    assert num(fast, "velocity_rms_mm_s") < 0.01 * full
    assert unknown["velocity_rms_mm_s"] == fast["velocity_rms_mm_s"]


def test_velocity_band_must_start_above_0_hz() -> None:
    spec = power_spectrum(np.random.default_rng(0).normal(size=1000), 10_000.0)
    with pytest.raises(ValueError, match="above 0"):
        velocity_rms(spec, 0.0, 1000.0)


def test_harmonic_amplitudes_at_1x_2x_3x() -> None:
    fs, n, fr = 25_600.0, 16_384, 29.37  # not on a bin
    x = sine(3.0, fr, fs, n) + sine(2.0, 2 * fr, fs, n, 1.0) + sine(1.0, 3 * fr, fs, n, 2.0)
    x += sine(5.0, 4 * fr, fs, n)  # 4x must not leak into 3x
    amps = harmonic_amplitudes(power_spectrum(x, fs), fr)
    assert amps == pytest.approx((3.0, 2.0, 1.0), rel=0.01)
    result = vibration_indicators(x, fs, shaft_hz=fr)
    assert (result["amp_1x"], result["amp_2x"], result["amp_3x"]) == pytest.approx(amps)


def test_harmonic_above_nyquist_is_nan() -> None:
    spec = power_spectrum(sine(1.0, 300.0, 1000.0, 1000), 1000.0)
    one, two = harmonic_amplitudes(spec, 300.0, orders=(1, 2))
    assert one == pytest.approx(1.0, rel=0.01)
    assert math.isnan(two)


@pytest.mark.parametrize("m", [0.2, 0.5, 0.9])
def test_am_carrier_envelope_line_is_the_modulation_depth(m: float) -> None:
    fs, n, fc, fm = 12_000.0, 12_000, 3000.0, 107.0
    t = np.arange(n) / fs
    x = 4.0 * (1 + m * np.cos(2 * np.pi * fm * t)) * np.cos(2 * np.pi * fc * t)
    env = envelope_spectrum(x, fs)
    k = int(np.argmax(env.amplitude))
    assert env.freqs[k] == pytest.approx(fm)
    assert env.amplitude[k] == pytest.approx(4.0 * m, rel=0.02)
    assert line_amplitude(env, fm * 1.02) == pytest.approx(4.0 * m, rel=0.02)  # +-3 % search


def test_envelope_ignores_modulation_outside_the_band() -> None:
    fs, n = 12_000.0, 12_000
    t = np.arange(n) / fs
    x = (1 + 0.5 * np.cos(2 * np.pi * 50 * t)) * np.cos(2 * np.pi * 500 * t)  # carrier below 2k
    assert envelope_spectrum(x, fs).amplitude.max() < 1e-6
    assert envelope_spectrum(x, fs, band=(300.0, 700.0)).amplitude.max() == pytest.approx(0.5)


# --- bearings ------------------------------------------------------------------------------


def test_skf_6205_defect_orders_to_4_significant_digits() -> None:
    f = defect_frequencies(SKF_6205)
    got = {
        name: f"{value:.4g}"
        for name, value in [
            ("ftf", f.ftf),
            ("bpfo", f.bpfo),
            ("bpfi", f.bpfi),
            ("bsf", f.bsf),
            ("bsf2", f.bsf2),
        ]
    }
    assert got == {
        "ftf": "0.3983",
        "bpfo": "3.585",
        "bpfi": "5.415",
        "bsf": "2.357",
        "bsf2": "4.713",
    }


def test_defect_frequencies_scale_with_shaft_and_contact_angle() -> None:
    f = defect_frequencies(SKF_6205, 29.95)
    assert f.bpfo == pytest.approx(3.5848 * 29.95, rel=1e-4)
    angled = BearingGeometry(12, 10.0, 60.0, contact_angle_deg=40.0)
    a = defect_frequencies(angled, 25.0)
    r = 10.0 / 60.0 * math.cos(math.radians(40))
    assert a.bpfo + a.bpfi == pytest.approx(12 * 25.0)  # n fr, whatever r is
    assert a.bpfi - a.bpfo == pytest.approx(12 * 25.0 * r)
    assert a.ftf == pytest.approx(a.bpfo / 12)
    assert a.bsf == pytest.approx(25.0 * 3 * (1 - r * r))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"balls": 0, "ball_diameter": 1.0, "pitch_diameter": 5.0},
        {"balls": 9, "ball_diameter": 5.0, "pitch_diameter": 5.0},
        {"balls": 9, "ball_diameter": -1.0, "pitch_diameter": 5.0},
        {"balls": 9, "ball_diameter": 1.0, "pitch_diameter": 5.0, "contact_angle_deg": 90.0},
    ],
)
def test_impossible_geometry_is_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need|least"):
        BearingGeometry(**kwargs)  # type: ignore[arg-type]


FS_BEARING = 12_000.0
SHAFT_HZ = 1797 / 60


def faulty_bearing(defect_hz: float, seed: int) -> FloatArray:
    """Impacts at `defect_hz` (0.1 ms jitter) ringing a 3 kHz resonance, 1x, Gaussian noise."""
    n = int(2 * FS_BEARING)
    rng = np.random.default_rng(seed)
    tau = np.arange(int(0.01 * FS_BEARING)) / FS_BEARING
    ring = 5.0 * np.exp(-tau / 0.0008) * np.sin(2 * np.pi * 3000 * tau)
    x = np.zeros(n + ring.size)
    for t0 in np.arange(0.0, n / FS_BEARING, 1 / defect_hz):
        k = max(0, round((t0 + rng.normal(0.0, 1e-4)) * FS_BEARING))
        x[k : k + ring.size] += ring
    return x[:n] + sine(0.5, SHAFT_HZ, FS_BEARING, n) + rng.normal(0.0, 1.0, n)


@pytest.mark.parametrize(("fault", "other"), [("bpfo", "bpfi"), ("bpfi", "bpfo")])
def test_synthetic_race_fault_shows_on_its_own_line(fault: str, other: str) -> None:
    freqs = defect_frequencies(SKF_6205, SHAFT_HZ)
    x = faulty_bearing(getattr(freqs, fault), seed=11)
    r = vibration_indicators(x, FS_BEARING, shaft_hz=SHAFT_HZ, bearing=SKF_6205)
    assert num(r, f"{fault}_amp") > 5 * num(r, f"{other}_amp")
    assert num(r, f"{fault}_ratio") > 20
    for quiet in {"ftf", "bpfo", "bpfi", "bsf2"} - {fault}:
        assert num(r, f"{quiet}_ratio") < 5, quiet
    assert num(r, "kurtosis") > 4
    # The 2x line confirms the 1x one.
    lines = {line.key: line for line in defect_lines(envelope_spectrum(x, FS_BEARING), freqs)}
    assert lines[fault].ratio_2x > 10


def test_healthy_bearing_ratios_stay_low() -> None:
    n = int(2 * FS_BEARING)
    rng = np.random.default_rng(5)
    x = sine(0.5, SHAFT_HZ, FS_BEARING, n) + rng.normal(0.0, 1.0, n)
    r = vibration_indicators(x, FS_BEARING, shaft_hz=SHAFT_HZ, bearing=SKF_6205)
    for key in ("ftf", "bpfo", "bpfi", "bsf2"):
        assert 0.5 < num(r, f"{key}_ratio") < 5, key


# --- ISO 10816 zones -----------------------------------------------------------------------

EXPECTED_TABLES = {
    "iso10816-3/group1/rigid": (2.3, 4.5, 7.1),
    "iso10816-3/group1/flexible": (3.5, 7.1, 11.0),
    "iso10816-3/group2/rigid": (1.4, 2.8, 4.5),
    "iso10816-3/group2/flexible": (2.3, 4.5, 7.1),
    "iso10816-1/class1": (0.71, 1.8, 4.5),
    "iso10816-1/class2": (1.12, 2.8, 7.1),
    "iso10816-1/class3": (1.8, 4.5, 11.2),
    "iso10816-1/class4": (2.8, 7.1, 18.0),
}


def test_zone_tables_hold_the_standard_values() -> None:
    assert {name: t.boundaries for name, t in TABLES.items()} == EXPECTED_TABLES


def test_iso10816_3_lookup_by_group_and_foundation() -> None:
    assert iso10816_3_table(2, "flexible").boundaries == (2.3, 4.5, 7.1)
    assert iso10816_3_table(1, "rigid").boundaries == (2.3, 4.5, 7.1)
    with pytest.raises(ValueError, match="group 3"):
        iso10816_3_table(3, "rigid")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(EXPECTED_TABLES))
@pytest.mark.parametrize(("index", "below", "above"), [(0, "A", "B"), (1, "B", "C"), (2, "C", "D")])
def test_zone_at_and_around_every_boundary(name: str, index: int, below: str, above: str) -> None:
    table = TABLES[name]
    edge = EXPECTED_TABLES[name][index]
    assert zone(edge, table) == above  # on the boundary: the worse zone
    assert zone(math.nextafter(edge, 0.0), table) == below
    assert zone(edge * 0.99, table) == below
    assert zone(edge * 1.01, table) == above


def test_zone_extremes_and_bad_values() -> None:
    table = TABLES["iso10816-3/group2/rigid"]
    assert zone(0.0, table) == "A"
    assert zone(1e6, table) == "D"
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="velocity"):
            zone(bad, table)
    with pytest.raises(ValueError, match="rise"):
        ZoneTable("bad", "falling boundaries", 2.0, 1.0, 3.0)


@settings(max_examples=200)
@given(
    name=st.sampled_from(sorted(EXPECTED_TABLES)),
    v1=st.floats(0.0, 50.0),
    v2=st.floats(0.0, 50.0),
)
def test_zone_is_monotonic_in_velocity(name: str, v1: float, v2: float) -> None:
    lo, hi = sorted((v1, v2))
    assert zone(lo, TABLES[name]) <= zone(hi, TABLES[name])  # "A" < "B" < "C" < "D"


def test_zone_in_the_indicator_set_and_not_below_120_rpm() -> None:
    fs, n = 25_600.0, 16_384
    x = sine(1.0, 100.0, fs, n)  # 11.04 mm/s
    table = TABLES["iso10816-3/group2/rigid"]
    assert vibration_indicators(x, fs, units="g", iso=table)["iso10816_zone"] == "D"
    flexible = TABLES["iso10816-1/class4"]
    assert vibration_indicators(x, fs, units="g", iso=flexible)["iso10816_zone"] == "C"
    assert "iso10816_zone" not in vibration_indicators(x, fs, units="g", iso=table, shaft_hz=1.9)
    assert "iso10816_zone" in vibration_indicators(x, fs, units="g", iso=table, shaft_hz=2.0)


# --- units ---------------------------------------------------------------------------------


def test_unit_known_values() -> None:
    assert units.g_to_m_s2(1.0) == 9.80665
    assert units.m_s2_to_g(19.6133) == pytest.approx(2.0)
    assert units.in_s_to_mm_s(1.0) == 25.4
    assert units.mm_s_to_in_s(7.1) == pytest.approx(0.27953, rel=1e-4)
    assert units.degf_to_degc(212.0) == pytest.approx(100.0)
    assert units.degf_to_degc(-40.0) == pytest.approx(-40.0)
    assert units.degc_to_degf(37.0) == pytest.approx(98.6)
    assert units.rms_from_sine_peak(1.0) == pytest.approx(0.7071068)
    assert units.sine_peak_from_rms(1.0) == pytest.approx(1.4142136)
    assert units.acceleration_factor("g") == 9.80665
    with pytest.raises(ValueError, match="unknown acceleration unit"):
        units.acceleration_factor("mm/s2")


@given(st.floats(-1e6, 1e6))
def test_unit_conversions_round_trip(value: float) -> None:
    pairs = [
        (units.g_to_m_s2, units.m_s2_to_g),
        (units.in_s_to_mm_s, units.mm_s_to_in_s),
        (units.degf_to_degc, units.degc_to_degf),
        (units.rms_from_sine_peak, units.sine_peak_from_rms),
    ]
    for there, back in pairs:
        assert back(there(value)) == pytest.approx(value, rel=1e-12, abs=1e-9)
        assert there(back(value)) == pytest.approx(value, rel=1e-12, abs=1e-9)


# --- the full set --------------------------------------------------------------------------


def test_indicator_set_has_exactly_the_documented_keys() -> None:
    fs = 25_600.0
    x = np.random.default_rng(1).normal(size=16_384)
    minimal = vibration_indicators(x, fs)
    assert set(minimal) == {*WAVEFORM_KEYS, "velocity_rms_mm_s"}
    full = vibration_indicators(
        x,
        fs,
        shaft_hz=29.95,
        bearing=SKF_6205,
        bands=[(10.0, 1000.0), (2.5, 5000.0)],
        iso=TABLES["iso10816-3/group2/rigid"],
    )
    bearing_keys = {f"{k}_{s}" for k in ("ftf", "bpfo", "bpfi", "bsf2") for s in ("amp", "ratio")}
    assert set(full) == {
        *WAVEFORM_KEYS,
        "velocity_rms_mm_s",
        "iso10816_zone",
        "band_rms_10_1000",
        "band_rms_2p5_5000",
        "amp_1x",
        "amp_2x",
        "amp_3x",
        *bearing_keys,
    }
    assert all(isinstance(v, float) for k, v in full.items() if k != "iso10816_zone")
    assert "ftf_amp" not in vibration_indicators(x, fs, bearing=SKF_6205)  # needs shaft speed


def test_band_keys() -> None:
    assert band_key(10, 1000) == "band_rms_10_1000"
    assert band_key(10.0, 1000.0) == "band_rms_10_1000"
    assert band_key(2.5, 1000) == "band_rms_2p5_1000"


def test_g_input_equals_the_same_signal_in_m_s2() -> None:
    fs = 12_000.0
    x = faulty_bearing(100.0, seed=2) / 10
    in_g = vibration_indicators(x, fs, units="g", shaft_hz=SHAFT_HZ, bearing=SKF_6205)
    in_si = vibration_indicators(G * x, fs, units="m/s2", shaft_hz=SHAFT_HZ, bearing=SKF_6205)
    assert in_g == pytest.approx(in_si, rel=1e-9)
    assert in_g["rms"] == pytest.approx(G * waveform_features(x)["rms"])


def test_band_rms_in_the_set_is_in_m_s2() -> None:
    fs, n = 25_600.0, 16_384
    x = sine(0.5, 440.0, fs, n)  # 0.5 g peak
    r = vibration_indicators(x, fs, units="g", bands=[(100.0, 1000.0), (1000.0, 2000.0)])
    assert r["band_rms_100_1000"] == pytest.approx(0.5 * G / math.sqrt(2), rel=1e-3)
    assert num(r, "band_rms_1000_2000") < 1e-3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"units": "mm/s"}, "unit"),
        ({"shaft_hz": 0.0}, "shaft_hz"),
        ({"shaft_hz": math.nan}, "shaft_hz"),
        ({"bands": [(10.0, 6000.1)]}, "band"),
        ({"shaft_hz": 25.0, "bearing": SKF_6205, "envelope_band": (2000.0, 7000.0)}, "band"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, object], match: str) -> None:
    x = np.random.default_rng(0).normal(size=4096)
    with pytest.raises(ValueError, match=match):
        vibration_indicators(x, 12_000.0, **kwargs)  # type: ignore[arg-type]


def test_importing_the_package_does_not_load_numpy() -> None:
    code = "import sys, edge_agent.indicators; print('numpy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
