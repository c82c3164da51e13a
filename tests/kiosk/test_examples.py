"""The shipped example configurations are current, complete and valid."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from kiosk.examples import ROLES, role_model
from kiosk.settings import example_toml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def undescribed(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Return the leaf fields of ``model`` that have no description."""
    missing = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            missing += undescribed(kind, f"{prefix}{name}.")
        elif not field.description:
            missing.append(prefix + name)
    return missing


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_field_is_described(role: str) -> None:
    assert undescribed(role_model(role)) == []


@pytest.mark.parametrize("role", sorted(ROLES))
def test_example_file_is_current_and_loads(role: str) -> None:
    model = role_model(role)
    shipped = (DEPLOY / f"{role}.example.toml").read_text(encoding="utf-8")

    assert shipped == example_toml(model), (
        f"regenerate: kiosk config-example {role} > deploy/{role}.example.toml"
    )
    assert model.model_validate(tomllib.loads(shipped)) == model()
