"""Model cards (tools/models/<name>.yaml): what a model predicts, for whom, from which features, read by people too."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mopsbot.errors import UserFacingError
from mopsbot.sqlcheck import SqlCheckError, check_sql

IDENT = r"^[a-z][a-z0-9_]*$"


class ModelCardError(UserFacingError, ValueError):
    """A model card is invalid or missing; the message names the file."""


class UnknownModel(UserFacingError):
    """No card with that name; the message lists the models there are."""


class Feature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=IDENT)  # a column of the entity table
    business_name: str
    unit: str = ""
    type: Literal["numeric", "categorical", "binary"]
    transform: Literal["log1p"] | None = None  # applied before the model sees the value


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float
    meaning: str = ""


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=IDENT)
    title: str
    version: str = Field(pattern=r"^[\w.\-]+$")
    owner: str
    kind: Literal["classifier", "regressor"]
    purpose: str
    target: str
    horizon_days: int | None = None
    entity: str
    entity_table: str = Field(pattern=IDENT)
    entity_key: str = Field(pattern=IDENT)
    score_scale: str = ""
    card_doc: str | None = None  # knowledge/ doc id of the prose card
    tiers: dict[str, Tier] = Field(default_factory=dict)
    features: list[Feature] = Field(min_length=1)
    training_window: str = ""
    label: str | None = None  # SQL over the entity table; demo models are trained from it
    training_filter: str | None = None
    population: str | None = None  # which entities get scores

    def tier(self, score: float) -> str | None:
        """The tier whose minimum the score reaches (highest first)."""
        for name, tier in sorted(self.tiers.items(), key=lambda kv: -kv[1].min):
            if score >= tier.min:
                return name
        return None

    def feature(self, name: str) -> Feature | None:
        return next((f for f in self.features if f.name == name), None)


def load_card(path: Path) -> ModelCard:
    """One card, validated (SQL parts checked like the metric catalog). Raises ModelCardError."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        card = ModelCard.model_validate(raw)
    except FileNotFoundError:
        raise ModelCardError(f"{path}: file not found") from None
    except yaml.YAMLError as err:
        raise ModelCardError(f"{path}: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        raise ModelCardError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    for part in ("label", "training_filter", "population"):
        text = getattr(card, part)
        if text:
            try:
                check_sql(text, None, f"{path}: {part}")
            except SqlCheckError as err:
                raise ModelCardError(str(err)) from None
    return card


def load_cards(folder: Path) -> dict[str, ModelCard]:
    """Every card in tools/models/, by name."""
    cards = {}
    for path in sorted(folder.glob("*.yaml")):
        card = load_card(path)
        if card.name in cards:
            raise ModelCardError(f"{path}: a second card named {card.name}")
        cards[card.name] = card
    return cards
