"""MetricQuery: what a model (or the local planner) fills in; the engine, not the model, writes the SQL."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Grain = Literal["day", "week", "month", "quarter", "year"]
AttributionModel = Literal["first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay"]
Name = Annotated[str, Field(min_length=1, max_length=80)]


class Filter(BaseModel):
    """Keep rows whose dimension is (or is not) one of the values."""

    model_config = ConfigDict(extra="forbid")
    dimension: Name
    op: Literal["in", "not_in"] = "in"
    values: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1, max_length=50)


class MetricQuery(BaseModel):
    """Catalogued metrics, broken down by dimensions and a time grain, over a period, with filters."""

    model_config = ConfigDict(extra="forbid")
    metrics: list[Name] = Field(min_length=1, max_length=6, description="Metric names or synonyms, e.g. cpl.")
    dimensions: list[Name] = Field(default_factory=list, max_length=3, description="Break down by, e.g. channel.")
    grain: Grain | None = Field(None, description="Time grain for a trend; none for one figure per group.")
    period: str | None = Field(
        None,
        max_length=80,
        description="Relative or absolute: 'last quarter', 'last 30 days', 'QTD', 'YTD', 'Q3 2026', 'October 2026', "
        "'since March', '2026-01-01..2026-03-31'. Default: the last 90 days.",
    )
    start: date | None = Field(None, description="Absolute start (inclusive); use with end instead of period.")
    end: date | None = Field(None, description="Absolute end (inclusive).")
    filters: list[Filter] = Field(default_factory=list, max_length=10)
    compare_to: Literal["previous_period", "same_period_last_year"] | None = None
    attribution: AttributionModel | None = Field(
        None, description="Attribution model for attributed pipeline/revenue (default w_shaped)."
    )
    order_by: Name | None = Field(None, description="A metric or dimension; prefix '-' for descending.")
    limit: int | None = Field(None, ge=1, le=1000)

    @model_validator(mode="after")
    def _period_or_range(self) -> MetricQuery:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end, or a period")
        if self.start and self.period:
            raise ValueError("give a period or start/end, not both")
        if self.start and self.end and self.end < self.start:
            raise ValueError("end is before start")
        return self
