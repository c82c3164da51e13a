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


def example_toml(model: type[BaseModel]) -> str:
    """Return a TOML file of ``model``'s defaults, each preceded by its description.

    Values without a default (None) are written commented out, so the file
    loads as it is and shows every key an operator may set.
    """
    lines: list[str] = []
    _example_section(model(), [], lines)
    return "\n".join(lines).strip() + "\n"


def _example_section(section: BaseModel, path: list[str], lines: list[str]) -> None:
    nested: list[tuple[list[str], BaseModel]] = []
    for name, field in type(section).model_fields.items():
        value = getattr(section, name)
        if isinstance(value, BaseModel):
            nested.append(([*path, name], value))
            continue
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(item, BaseModel) for item in value.values())
        ):
            nested.extend(([*path, name, key], item) for key, item in value.items())
            continue
        if field.description:
            lines.append(f"# {field.description}")
        if value is None:
            lines.append(f"# {name} =")
        else:
            lines.append(f"{name} = {_toml_value(value)}")
    for sub_path, sub in nested:
        lines.extend(["", f"[{'.'.join(_toml_key(p) for p in sub_path)}]"])
        _example_section(sub, sub_path, lines)


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    text = str(
        value.get_secret_value() if hasattr(value, "get_secret_value") else value
    )
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
