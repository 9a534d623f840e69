"""Spectra of one vibration window: power, band RMS, velocity, harmonics, envelope.

ISO 13374 data manipulation. Conventions (docs/indicators.md):

- The window mean is removed first; the window is a **periodic** Hann window
  w[n] = 0.5 - 0.5 cos(2 pi n / N), n = 0..N-1 (the DFT-even form, not the symmetric one).
- Bins are f_k = k fs / N, k = 0..N//2 (`numpy.fft.rfft`).
- One-sided power per bin, in (units)**2: P_k = 2 |X_k|**2 / (N sum(w**2)), with the DC bin and
  (for even N) the Nyquist bin not doubled. It is mean-square power: sum(P_k) ~ mean(d**2).
- Band RMS = sqrt(sum of P_k for lo <= f_k <= hi) (both edges inclusive). Because it sums the
  energy of the whole leakage lobe it does not depend on where a line falls between bins.
- Velocity from acceleration is done in the frequency domain over the band only:
  v_rms**2 = sum over the band of P_k / (2 pi f_k)**2. Nothing below the band is integrated
  (1/f**2 would amplify low-frequency noise) and nothing is integrated in time.
- A harmonic amplitude (0-to-peak) is sqrt(2 sum P_k) over bins within +-3 bins of h * fr.
- The envelope spectrum is the Hann *amplitude* spectrum (A_k = 2 |E_k| / sum(w), DC not
  doubled) of the envelope |analytic signal| of the band-passed window, envelope mean removed.
  Band-pass and Hilbert transform are one frequency-domain gain: the rfft bins inside the band
  are doubled (the analytic-signal gain h = 1, 2 ... 2, 1, 0 ... 0), all others zeroed.
  A line of amplitude m in the envelope (e.g. (1 + m cos 2 pi fm t) cos 2 pi fc t) reads m.
  Averaging over successive windows belongs to the caller (a streaming stage).

A band must satisfy 0 <= lo < hi <= fs / 2, or ValueError: a band is never silently clipped.
The window length sets the resolution fs / N; keep the lowest band edge several bins above 0
(a 10 Hz edge wants a window of at least ~0.4 s) and fs >= 2.56 x the highest band edge.

Caches (`functools.lru_cache`) hold only read-only arrays keyed by (N, fs, band): pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from .waveform import as_window

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class PowerSpectrum:
    """One-sided mean-square power per bin of one window, in (input units)**2."""

    freqs: FloatArray
    """Bin frequencies k fs / N, Hz."""
    power: FloatArray
    """P_k = 2 |X_k|**2 / (N sum(w**2)); DC and Nyquist not doubled."""
    fs: float
    """Sample rate of the window, Hz."""
    n: int
    """Window length N, samples."""

    @property
    def df(self) -> float:
        """Bin spacing fs / N, Hz."""
        return self.fs / self.n


@dataclass(frozen=True, slots=True, eq=False)
class AmplitudeSpectrum:
    """One-sided 0-to-peak amplitude per bin of one window, in input units."""

    freqs: FloatArray
    """Bin frequencies k fs / N, Hz."""
    amplitude: FloatArray
    """A_k = 2 |X_k| / sum(w) (Hann window); DC and Nyquist not doubled."""
    fs: float
    """Sample rate of the window, Hz."""
    n: int
    """Window length N, samples."""

    @property
    def df(self) -> float:
        """Bin spacing fs / N, Hz."""
        return self.fs / self.n


def _frozen(a: FloatArray) -> FloatArray:
    a.flags.writeable = False
    return a


@lru_cache(maxsize=16)
def hann(n: int) -> FloatArray:
    """The periodic (DFT-even) Hann window of length n, read-only: 0.5 - 0.5 cos(2 pi k / n)."""
    if n < 1:
        raise ValueError(f"window length must be >= 1, got {n}")
    return _frozen(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n))


@lru_cache(maxsize=16)
def _hann_norms(n: int) -> tuple[float, float]:
    """(sum(w), sum(w**2)) of `hann(n)`."""
    w = hann(n)
    return float(w.sum()), float(np.dot(w, w))


@lru_cache(maxsize=16)
def rfft_freqs(n: int, fs: float) -> FloatArray:
    """The rfft bin frequencies k fs / n, k = 0..n//2, read-only."""
    return _frozen(np.arange(n // 2 + 1, dtype=np.float64) * float(fs / n))


def _check_fs(fs: float) -> None:
    if not (math.isfinite(fs) and fs > 0.0):
        raise ValueError(f"sample rate must be a positive number of Hz, got {fs!r}")


def band_bins(n: int, fs: float, lo: float, hi: float) -> slice:
    """The rfft bins k with lo <= k fs / n <= hi, for a window of n samples at fs.

    ValueError unless 0 <= lo < hi <= fs / 2.
    """
    if not (0.0 <= lo < hi <= fs / 2.0):
        raise ValueError(
            f"band {lo:g}-{hi:g} Hz must satisfy 0 <= lo < hi <= fs/2 = {fs / 2.0:g} Hz"
        )
    df = fs / n
    # A tiny relative slack so that an edge exactly on a bin is inside despite rounding.
    k_lo = math.ceil(lo / df * (1.0 - 1e-12))
    k_hi = math.floor(hi / df * (1.0 + 1e-12))
    return slice(k_lo, min(k_hi, n // 2) + 1)


def _power_from_rfft(spectrum: npt.NDArray[np.complex128], n: int) -> FloatArray:
    p = spectrum.real * spectrum.real + spectrum.imag * spectrum.imag
    p *= 2.0 / (n * _hann_norms(n)[1])
    p[0] *= 0.5
    if n % 2 == 0:
        p[-1] *= 0.5
    return p


def power_spectrum(x: npt.ArrayLike, fs: float) -> PowerSpectrum:
    """One-sided power spectrum of one window: mean removed, periodic Hann, see module doc."""
    _check_fs(fs)
    a = as_window(x)
    n = a.size
    d = a - a.mean()
    p = _power_from_rfft(np.fft.rfft(d * hann(n)), n)
    return PowerSpectrum(freqs=rfft_freqs(n, fs), power=p, fs=fs, n=n)


def band_rms(spec: PowerSpectrum, lo: float, hi: float) -> float:
    """RMS over lo <= f <= hi Hz: sqrt(sum of P_k in the band), in the spectrum's units."""
    return math.sqrt(float(spec.power[band_bins(spec.n, spec.fs, lo, hi)].sum()))


@lru_cache(maxsize=16)
def _integration_gain(n: int, fs: float, lo: float, hi: float) -> FloatArray:
    """1 / (2 pi f_k)**2 over the band's bins (read-only); the band must exclude DC."""
    f = rfft_freqs(n, fs)[band_bins(n, fs, lo, hi)]
    return _frozen(1.0 / (2.0 * np.pi * f) ** 2)


def velocity_rms(accel: PowerSpectrum, lo: float, hi: float) -> float:
    """Velocity RMS over lo..hi Hz from an acceleration power spectrum.

    v_rms = sqrt(sum over the band of P_k / (2 pi f_k)**2): acceleration in m/s2 gives m/s.
    The band must start above 0 Hz (ValueError otherwise): nothing below it is integrated.
    """
    if lo <= 0.0:
        raise ValueError(f"velocity band must start above 0 Hz, got {lo:g} Hz")
    bins = band_bins(accel.n, accel.fs, lo, hi)
    gain = _integration_gain(accel.n, accel.fs, lo, hi)
    return math.sqrt(float(np.dot(accel.power[bins], gain)))


def harmonic_amplitudes(
    spec: PowerSpectrum, shaft_hz: float, orders: Sequence[int] = (1, 2, 3), half_width: int = 3
) -> tuple[float, ...]:
    """0-to-peak amplitude at each order h of the shaft frequency fr (1x, 2x, 3x by default).

    A_h = sqrt(2 sum P_k) over the bins k with |k - h fr / df| <= `half_width` (3 bins), so
    it is independent of where the line falls between bins (the sum holds the Hann lobe).
    NaN for an order whose frequency is above fs / 2. Units: those of the spectrum.
    """
    if not (math.isfinite(shaft_hz) and shaft_hz > 0.0):
        raise ValueError(f"shaft frequency must be a positive number of Hz, got {shaft_hz!r}")
    last = spec.power.size - 1
    out: list[float] = []
    for h in orders:
        centre = h * shaft_hz / spec.df
        if centre > last:
            out.append(math.nan)
            continue
        k_lo = max(0, math.ceil(centre - half_width))
        k_hi = min(last, math.floor(centre + half_width))
        out.append(math.sqrt(2.0 * float(spec.power[k_lo : k_hi + 1].sum())))
    return tuple(out)


@lru_cache(maxsize=16)
def _analytic_band_gain(n: int, fs: float, lo: float, hi: float) -> FloatArray:
    """Gain on rfft bins: band-pass lo..hi times the analytic-signal gain (1 at DC and
    Nyquist, 2 between), zero elsewhere; read-only."""
    gain = np.zeros(n // 2 + 1)
    gain[band_bins(n, fs, lo, hi)] = 2.0
    gain[0] = min(gain[0], 1.0)
    if n % 2 == 0:
        gain[-1] = min(gain[-1], 1.0)
    return _frozen(gain)


def envelope(x: npt.ArrayLike, fs: float, band: tuple[float, float]) -> FloatArray:
    """Envelope of one window band-passed to `band` (Hz): |analytic signal|, mean NOT removed.

    Band-pass and FFT Hilbert transform in one gain on the rfft of the (mean-removed) window;
    the filter is circular over the window, as any FFT filter is.
    """
    _check_fs(fs)
    a = as_window(x)
    n = a.size
    gain = _analytic_band_gain(n, fs, float(band[0]), float(band[1]))
    # ifft(.., n) pads the one-sided spectrum with zeros: the negative frequencies of an
    # analytic signal.
    analytic = np.fft.ifft(np.fft.rfft(a - a.mean()) * gain, n)
    return np.abs(analytic)


def amplitude_spectrum(x: npt.ArrayLike, fs: float) -> AmplitudeSpectrum:
    """Hann amplitude spectrum of one window, mean removed: A_k = 2 |X_k| / sum(w)."""
    _check_fs(fs)
    a = as_window(x)
    n = a.size
    amp = np.abs(np.fft.rfft((a - a.mean()) * hann(n)))
    amp *= 2.0 / _hann_norms(n)[0]
    amp[0] *= 0.5
    if n % 2 == 0:
        amp[-1] *= 0.5
    return AmplitudeSpectrum(freqs=rfft_freqs(n, fs), amplitude=amp, fs=fs, n=n)


def envelope_spectrum(
    x: npt.ArrayLike, fs: float, band: tuple[float, float] = (2000.0, 5000.0)
) -> AmplitudeSpectrum:
    """Envelope spectrum of one window: band-pass `band` (default 2-5 kHz, for fs of
    12-25.6 kHz), FFT Hilbert envelope, envelope mean removed, Hann amplitude spectrum.

    Units: those of the input (0-to-peak amplitude of the envelope's modulation).
    """
    return amplitude_spectrum(envelope(x, fs, band), fs)
