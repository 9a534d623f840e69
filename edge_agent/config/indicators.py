"""Indicator declarations: per device, on its points (docs/indicators.md).

One model per `kind`, chosen by the `kind` key (a tagged union), so that each kind accepts
exactly its own keys and a misspelt one is named with a suggestion.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .models_base import NAME, Strict
from .units import Duration, Frequency, LengthMm


class IsoSpec(Strict):
    """ISO 10816-3 machine group and foundation (never guessed: see docs/indicators.md)."""

    group: Literal[1, 2] = Field(description="1: > 300 kW; 2: 15-300 kW")
    foundation: Literal["rigid", "flexible"]


class BearingSpec(Strict):
    balls: int = Field(ge=3, le=100)
    ball_diameter: LengthMm
    pitch_diameter: LengthMm
    contact_angle: float = Field(0.0, ge=0, lt=90, description="degrees")

    @model_validator(mode="after")
    def _geometry(self) -> BearingSpec:
        if self.ball_diameter >= self.pitch_diameter:
            raise ValueError("ball_diameter must be smaller than pitch_diameter")
        return self


class _Indicator(Strict):
    name: str = Field(pattern=NAME, max_length=64)
    source: str = Field(description="The point it is computed from")


class Vibration(_Indicator):
    """Waveform indicators from an acceleration waveform (an array point)."""

    kind: Literal["vibration"]
    sample_rate: Frequency
    units: Literal["m/s2", "g"] = "m/s2"
    iso10816: IsoSpec | None = None
    shaft_speed: str | float | None = Field(
        None, description="A point giving the speed in rpm, or a fixed rpm"
    )
    bearing: BearingSpec | None = None
    bands: list[tuple[float, float]] = Field(default_factory=lambda: [(10.0, 1000.0)])


class IsoZone(_Indicator):
    """The ISO 10816-3 zone of a transmitter's overall velocity (a scalar point)."""

    kind: Literal["iso_zone"]
    units: Literal["mm/s", "in/s"] = "mm/s"
    measure: Literal["rms", "peak"] = Field(
        description="What the transmitter reports: the zone tables take RMS"
    )
    iso10816: IsoSpec


class RunningHours(_Indicator):
    kind: Literal["running_hours"]
    running_above: float | None = Field(
        None, description="For a scalar source: running while the value is above this"
    )
    max_gap: Duration = Field(60.0, description="A longer gap between readings is not credited")


class Threshold(_Indicator):
    kind: Literal["threshold"]
    high: float | None = None
    low: float | None = None
    hysteresis: float = Field(0.0, ge=0, description="Clear below high - hysteresis")
    on_delay: Duration = 0.0
    off_delay: Duration = 0.0

    @model_validator(mode="after")
    def _some_limit(self) -> Threshold:
        if self.high is None and self.low is None:
            raise ValueError("give high, low or both")
        return self


class Trend(_Indicator):
    kind: Literal["trend"]
    window: Duration
    limit: float = Field(description="Time until the value reaches this, at the current slope")


class Drift(_Indicator):
    kind: Literal["drift"]
    method: Literal["cusum", "page_hinkley"] = "cusum"
    baseline: Duration = Field(3600.0, description="EWMA time constant of the baseline")
    learn: Duration = Field(600.0, description="Learning period for the mean and sigma")
    learn_readings: int = Field(30, ge=2, description="...and at least this many readings")
    k: float = Field(0.5, ge=0, description="CUSUM allowance, in sigmas")
    h: float = Field(5.0, gt=0, description="CUSUM decision interval, in sigmas")
    delta: float | None = Field(
        None, ge=0, description="Page-Hinkley: change ignored below this (source units)"
    )
    threshold: float | None = Field(
        None, gt=0, description="Page-Hinkley: lambda, the decision threshold (source units)"
    )

    @model_validator(mode="after")
    def _page_hinkley(self) -> Drift:
        if self.method == "page_hinkley" and (self.delta is None or self.threshold is None):
            raise ValueError("page_hinkley needs delta and threshold, in the source's unit")
        return self


class Stats(_Indicator):
    kind: Literal["stats"]
    window: Duration


class Rate(_Indicator):
    kind: Literal["rate"]
    window: Duration


Indicator = Annotated[
    Vibration | IsoZone | RunningHours | Threshold | Trend | Drift | Stats | Rate,
    Field(discriminator="kind"),
]
KINDS = ("vibration", "iso_zone", "running_hours", "threshold", "trend", "drift", "stats", "rate")
