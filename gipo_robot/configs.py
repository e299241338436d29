"""Plain-dataclass configs to and from JSON, and ``name=value`` overrides from the command line.

Every run saves its config as JSON beside its artifacts, and a saved config starts the same run again
(``gipo-robot finetune --config RUN/config.json``). The dataclass is the single source of defaults: a key a
file leaves out takes the field's default, an unknown key is an error naming the file and the key, and a
command-line override ``field=value`` is converted to the field's declared type. Nothing here executes
code from a config (no ``eval``, no interpolation).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ConfigError",
    "config_from_dict",
    "load_config",
    "parse_assignments",
    "parse_value",
    "save_config",
]

C = TypeVar("C")


class ConfigError(ValueError):
    """A config file or override that does not fit its dataclass; the message names the file and field."""


def save_config(config: Any, path: str | Path) -> None:
    """Write ``config`` (a dataclass) to ``path`` as indented JSON, atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(config), indent=2))
    tmp.replace(path)


def load_config(cls: type[C], path: str | Path, **overrides: Any) -> C:
    """Read a config of type ``cls`` from the JSON file ``path``; ``overrides`` replace fields read.

    Raises:
        ConfigError: the file is missing or not JSON, or a key is unknown or has a bad value.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of {cls.__name__} fields")
    return config_from_dict(cls, {**data, **overrides}, where=str(path))


def config_from_dict(cls: type[C], data: Mapping[str, Any], *, where: str = "config") -> C:
    """Build ``cls`` from ``data``; missing keys take the dataclass defaults, nested dataclasses recurse.

    Raises:
        ConfigError: an unknown key (the message lists the known ones) or a value ``cls`` rejects.
    """
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown {cls.__name__} field(s) {unknown}; known: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        inner = _dataclass_in(hints.get(name))
        if inner is not None and isinstance(value, Mapping):
            value = config_from_dict(inner, value, where=f"{where}: {name}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        raise ConfigError(f"{where}: {message}") from None


def parse_assignments(pairs: Iterable[str], *, option: str) -> dict[str, str]:
    """``["sigma=0.5", "eps=0.2"]`` -> ``{"sigma": "0.5", "eps": "0.2"}`` (values stay strings).

    Raises:
        ConfigError: a pair without ``=`` or with an empty name, naming ``option``.
    """
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{option} expects NAME=VALUE, got {pair!r}")
        out[name.strip()] = value.strip()
    return out


def parse_value(text: str, annotation: Any, *, where: str) -> Any:
    """Convert a command-line string to the type ``annotation`` declares (bool, int, float, str, ``X |
    None``, ``Literal``, ``list``/``dict`` given as JSON).

    Raises:
        ConfigError: ``text`` is not a value of that type, naming ``where``.
    """
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.lower() in ("none", "null"):
            return None
        last: ConfigError | None = None
        for option in (a for a in args if a is not type(None)):
            try:
                return parse_value(text, option, where=where)
            except ConfigError as err:
                last = err
        raise last or ConfigError(f"{where}: cannot read {text!r}")
    if origin is typing.Literal:
        for choice in args:
            if str(choice) == text:
                return choice
        raise ConfigError(f"{where}={text!r}: expected one of {', '.join(map(str, args))}")
    if annotation is bool:
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{where}={text!r}: expected true or false")
    if annotation in (int, float):
        try:
            return annotation(text)
        except ValueError:
            raise ConfigError(
                f"{where}={text!r}: expected {'an int' if annotation is int else 'a float'}"
            ) from None
    if annotation is str or annotation is Any:
        return text
    if origin in (list, dict, tuple) or annotation in (list, dict, tuple):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"{where}={text!r}: expected JSON") from None
    raise ConfigError(f"{where}: values of type {annotation} cannot be given on the command line")


def _dataclass_in(annotation: Any) -> type | None:
    """The dataclass in ``annotation`` (``X`` or ``X | None``), or None."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None
