"""Load a role's TOML configuration, apply environment overrides, validate it.

Each role (bridge, agent) has one pydantic model whose sections reject
unknown keys. A value can be overridden by an environment variable named
``<PREFIX>__<SECTION>__<FIELD>`` (for example ``KIOSK_BRIDGE__DATABASE__URL``);
the value is parsed as TOML when it parses, else taken as a string.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from kiosk.errors import ConfigError

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)


class Section(BaseModel):
    """Base of every configuration section: strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


def load_settings(
    model: type[ModelT],
    path: Path | None,
    env_prefix: str,
    environ: Mapping[str, str] | None = None,
) -> ModelT:
    """Read ``path`` (or the model's defaults), apply overrides, validate.

    Raises:
        ConfigError: the file is missing or unreadable, or a value is invalid.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path)
    _apply_env(data, env_prefix, os.environ if environ is None else environ)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        source = str(path) if path else "the embedded defaults"
        raise ConfigError(
            f"configuration from {source} is invalid:\n{_describe(exc)}\n"
            "Fix the values named above (see config/*.example.toml)."
        ) from exc


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"configuration file {path} is not valid TOML: {exc}"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from exc


def _apply_env(data: dict[str, Any], prefix: str, environ: Mapping[str, str]) -> None:
    marker = prefix.upper() + "__"
    for name, raw in sorted(environ.items()):
        if not name.startswith(marker):
            continue
        keys = [part.lower() for part in name[len(marker) :].split("__") if part]
        if not keys:
            continue
        target = data
        for key in keys[:-1]:
            child = target.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name} overrides {key}, which is not a section")
            target = child
        target[keys[-1]] = _parse_value(raw)
        logger.debug("configuration %s overridden from the environment", ".".join(keys))


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)
