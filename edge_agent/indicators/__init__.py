"""Condition indicators: pure maths on one window of samples (ISO 13374 data manipulation).

Modules (each imports numpy itself, so importing this package does not load numpy):

- `units`: explicit unit and peak/RMS conversions;
- `waveform`: time-domain features of a window (RMS, peak, crest, Pearson kurtosis, ...);
- `spectrum`: periodic Hann window, one-sided power spectrum, band RMS, velocity RMS from
  acceleration, 1x/2x/3x amplitudes, envelope spectrum;
- `bearing`: rolling-element defect frequencies and their envelope line amplitudes;
- `iso10816`: ISO 10816-3 / 10816-1 severity zone tables and `zone()`;
- `vibration`: `vibration_indicators()`, the full set for one acceleration window.

Every function is pure: no I/O, no logging, no global mutable state (the only caches are
`functools.lru_cache` on read-only arrays keyed by window length and sample rate).
Conventions and known answers: docs/indicators.md.
"""
