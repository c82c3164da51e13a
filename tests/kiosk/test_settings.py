"""Configuration loading: TOML, environment overrides, strict validation."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import Field

from kiosk.errors import ConfigError
from kiosk.settings import Section, example_toml, load_settings


class Limits(Section):
    """A nested section."""

    pages: int = Field(20, ge=1, le=200, description="Most pages.")
    name: str = Field("office", description="A name.")


class Role(Section):
    """A role's configuration."""

    port: int = Field(8443, ge=1, le=65535, description="The port.")
    limits: Limits = Field(default_factory=Limits, description="Limits.")


def test_defaults_without_a_file() -> None:
    assert load_settings(Role, None, "T", environ={}).port == 8443


def test_file_and_environment_override(tmp_path: Path) -> None:
    path = tmp_path / "role.toml"
    path.write_text("port = 9000\n[limits]\npages = 5\n", encoding="utf-8")

    config = load_settings(
        Role, path, "T", environ={"T__LIMITS__NAME": "ward 7", "T__PORT": "9100"}
    )

    assert config.port == 9100
    assert config.limits.pages == 5
    assert config.limits.name == "ward 7"


def test_unknown_key_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "role.toml"
    path.write_text("[limits]\npagez = 5\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"limits\.pagez"):
        load_settings(Role, path, "T", environ={})


def test_out_of_bounds_value_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"limits\.pages"):
        load_settings(Role, None, "T", environ={"T__LIMITS__PAGES": "0"})


def test_missing_and_broken_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1", encoding="utf-8")

    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(Role, tmp_path / "absent.toml", "T", environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(Role, broken, "T", environ={})


def test_example_loads_back_to_the_defaults() -> None:
    text = example_toml(Role)

    assert "# Most pages." in text
    assert Role.model_validate(tomllib.loads(text)) == Role()
