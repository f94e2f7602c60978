"""Loading the configuration: flags over environment over a TOML file over the defaults.

:func:`load_config` builds an :class:`~bulkup.config.model.UploadConfig` from four layers, highest
first: flags (``overrides``), the environment (``BULKUP_<FIELD>``, ``BULKUP_PASSWORD``), a TOML
file (top-level keys are field names, ``[upload_params]`` holds the job options, a ``[serve]``
table belongs to the emulator), and the defaults. Every error names the key and where it came
from; the password is never read from the file or a flag, and never shown.
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from bulkup.config.checks import FieldProblem, fail, shown, size_or_none
from bulkup.config.model import (
    ENV_PREFIX,
    PASSWORD_ENV,
    UPLOAD_PARAMS_TABLE,
    UploadConfig,
)
from bulkup.config.shard import resolve_auto
from bulkup.errors import ConfigError, ProtocolValueError
from bulkup.protocol.options import UploadPostJob

__all__ = ["load_config"]

_SIZE_FIELDS = frozenset({"max_post_bytes", "max_file_size", "chunk_size", "min_size", "max_size"})
_INT_OR_AUTO_FIELDS = frozenset({"concurrency"})
_T = TypeVar("_T")


def _kind(name: str, hint: Any) -> str:
    """How the loader converts a field: from its type (None stripped) and the size list."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in get_args(hint) if arg is not type(None))
    if name in _SIZE_FIELDS:
        return "size"
    if name in _INT_OR_AUTO_FIELDS:
        return "int_or_auto"
    if get_origin(hint) is Literal or hint is str:
        return "str"
    if get_origin(hint) is tuple:
        return "strs"
    kinds: dict[Any, str] = {
        bool: "bool",
        int: "int",
        float: "float",
        Path: "path",
        UploadPostJob: "params",
    }
    if hint not in kinds:
        raise TypeError(f"UploadConfig.{name}: no loader for {hint!r}")
    return kinds[hint]


_KINDS: dict[str, str] = {
    name: _kind(name, hint) for name, hint in typing.get_type_hints(UploadConfig).items()
}
_FILE_REFUSED = "password is not read from a config file; use password_file or BULKUP_PASSWORD"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

# Layers, lowest first; the password's source is weighed against password_file's by these.
_RANK_FILE, _RANK_ENV, _RANK_FLAG = 1, 2, 3


def load_config(
    *, path: Path | None, environ: Mapping[str, str], overrides: Mapping[str, Any]
) -> UploadConfig:
    """Build the configuration: flags over environment over file over defaults.

    Args:
        path: A TOML config file, or None for none. Relative paths in it (``password_file``,
            ``ca_bundle``, ``report``) are relative to its folder; sizes may be strings such as
            ``"64MiB"``; its ``[serve]`` table is ignored.
        environ: The environment; ``BULKUP_<FIELD>`` for the scalar fields (``include`` and
            ``exclude`` take comma-separated patterns), ``BULKUP_PASSWORD`` for the password.
            Empty values count as unset; other ``BULKUP_*`` names are ignored.
        overrides: Flag values keyed by field name; None means "not given". ``upload_params``
            may be an ``UploadPostJob`` or a mapping merged over the file's table.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: naming the key and the file or variable it came from. ``password`` in the
            file or in ``overrides`` is refused; the password itself is never shown.
    """
    values: dict[str, Any] = {}
    origins: dict[str, tuple[int, str]] = {}
    params_table: dict[str, Any] = {}
    params_job: UploadPostJob | None = None

    if path is not None:
        file_values, params_table = _read_file(path)
        for key, value in file_values.items():
            values[key] = value
            origins[key] = (_RANK_FILE, str(path))
        if params_table:
            params_job = _params_from_table(params_table, str(path))

    env_password = environ.get(PASSWORD_ENV) or None
    for key, kind in _KINDS.items():
        variable = ENV_PREFIX + key.upper()
        text = environ.get(variable)
        if key == "password" or not text:
            continue
        with _prefixed(variable):
            values[key] = _from_env(key, kind, text)
        origins[key] = (_RANK_ENV, variable)

    for key, value in overrides.items():
        if value is None:
            continue
        if key == "password":
            raise ConfigError(
                "password cannot be given as a flag (it would show in ps); "
                "set BULKUP_PASSWORD or password_file"
            )
        if key not in _KINDS:
            raise ConfigError(f"unknown option {key!r}{_did_you_mean(key, _KINDS)}")
        if key == "upload_params":
            params_job = _params_override(value, params_table)
            continue
        values[key] = _from_value(key, _KINDS[key], value, None)
        origins[key] = (_RANK_FLAG, "")

    if params_job is not None:
        values["upload_params"] = params_job
    if isinstance(values.get("shard"), str):  # auto/N: K from JOB_COMPLETION_INDEX
        with _prefixed(origins["shard"][1] or "--shard"):
            values["shard"] = resolve_auto(values["shard"], environ)
    password = _resolve_password(env_password, values.get("password_file"), origins)
    if password is not None:
        values["password"] = password
    try:
        return UploadConfig(**values)
    except FieldProblem as exc:
        where = sorted({origins[k][1] for k in exc.keys if k in origins and origins[k][1]})
        if not where:
            raise
        raise ConfigError(f"{', '.join(where)}: {exc}") from None


@contextmanager
def _prefixed(where: str) -> Iterator[None]:
    """Re-raise a ConfigError with ``<where>: `` in front of its message."""
    try:
        yield
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _did_you_mean(key: str, choices: Mapping[str, object] | frozenset[str]) -> str:
    import difflib  # here: only a mistyped key needs it

    close = difflib.get_close_matches(key, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The file's top-level values (converted) and its ``[upload_params]`` table."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    params: dict[str, Any] = {}
    with _prefixed(str(path)):
        for key, value in data.items():
            if key == "serve":  # the emulator's table (bulkup serve)
                continue
            if key == "password":
                raise ConfigError(_FILE_REFUSED)
            if key not in _KINDS:
                raise ConfigError(f"unknown key {key!r}{_did_you_mean(key, _KINDS)}")
            if key == "upload_params":
                if not isinstance(value, dict):
                    raise ConfigError(f"upload_params must be a table, got {shown(value)}")
                params = value
                continue
            values[key] = _from_value(key, _KINDS[key], value, path.parent)
    return values, params


def _from_value(key: str, kind: str, value: Any, base: Path | None) -> Any:
    """Convert a typed value (TOML or flag); a value of the wrong type passes on unchanged,
    for ``UploadConfig`` to reject with the same message whatever its source."""
    if kind == "size" and isinstance(value, str):
        size = size_or_none(value)
        if size is None:
            fail(key, f'must be a size such as "16MiB" or 1048576, got {shown(value)}')
        return size
    if kind == "path" and isinstance(value, str) and value:
        resolved = Path(value).expanduser()
        return base / resolved if base is not None and not resolved.is_absolute() else resolved
    if kind == "strs" and isinstance(value, list):
        return tuple(value)
    return value


def _from_env(key: str, kind: str, text: str) -> Any:
    """Convert an environment string to the field's type."""
    if kind == "bool":
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return False
        fail(key, f"must be true or false (1/0, yes/no, on/off), got {shown(text)}")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            fail(key, f"must be an integer, got {shown(text)}")
    if kind == "int_or_auto":
        if text.strip().lower() == "auto":
            return "auto"
        try:
            return int(text)
        except ValueError:
            fail(key, f'must be an integer or "auto", got {shown(text)}')
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            fail(key, f"must be a number, got {shown(text)}")
    if kind == "strs":
        return tuple(item.strip() for item in text.split(",") if item.strip())
    if kind == "params":
        fail(key, "cannot be set from the environment; use the [upload_params] table")
    return _from_value(key, kind, text, None)


def _resolve_password(
    env_password: str | None, password_file: Any, origins: Mapping[str, tuple[int, str]]
) -> str | None:
    """The password from ``BULKUP_PASSWORD`` or ``password_file``, whichever layer is higher.

    Both from the environment is ambiguous and refused. A ``password_file`` of the wrong type
    is left for ``UploadConfig`` to reject.
    """
    if not isinstance(password_file, Path):
        return env_password
    rank, where = origins["password_file"]
    if env_password is not None:
        if rank == _RANK_ENV:
            raise ConfigError("BULKUP_PASSWORD and BULKUP_PASSWORD_FILE are both set; set one")
        if rank < _RANK_ENV:
            return env_password
    prefix = f"{where}: " if where else ""
    try:
        text = password_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{prefix}password_file {shown(password_file)} cannot be read ({exc.strerror})"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{prefix}password_file {shown(password_file)} is not UTF-8 text"
        ) from None
    password = text.rstrip("\r\n")
    if not password:
        raise ConfigError(f"{prefix}password_file {shown(password_file)} is empty")
    return password


def _params_override(value: Any, file_table: Mapping[str, Any]) -> UploadPostJob:
    if isinstance(value, UploadPostJob):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"upload_params must be an UploadPostJob or a mapping, got {shown(value)}"
        )
    return _params_from_table(_deep_merge(file_table, value), None)


def _deep_merge(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(low)
    for key, value in high.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(below, value)
        else:
            merged[key] = value
    return merged


def _params_from_table(table: Mapping[str, Any], where: str | None) -> UploadPostJob:
    """Build the job options from a table merged over the defaults."""
    merged = {**UPLOAD_PARAMS_TABLE, **table}
    if where is None:
        return _build_options(UploadPostJob, merged, "upload_params")
    with _prefixed(where):
        return _build_options(UploadPostJob, merged, "upload_params")


_CLASS_FIELD = re.compile(r"(\w+)\.(\w+): (.*)\Z", re.DOTALL)


def _build_options(cls: type[_T], table: Mapping[str, Any], key: str) -> _T:
    """Construct ``cls`` from ``table``, nested tables becoming nested option objects.

    ProtocolValueErrors become ConfigErrors naming ``<key>.<field>``.
    """
    hints = typing.get_type_hints(cls, localns=_processing_namespace())
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for name, value in table.items():
        if name not in known:
            raise ConfigError(f"unknown key '{key}.{name}'{_did_you_mean(name, known)}")
        nested = _nested_class(hints[name])
        if nested is not None:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key}.{name} must be a table, got {shown(value)}")
            value = _build_options(nested, value, f"{key}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    for name, spec in known.items():
        if spec.default is MISSING and spec.default_factory is MISSING and name not in kwargs:
            raise ConfigError(f"{key}.{name} is required")
    try:
        return cls(**kwargs)
    except ProtocolValueError as exc:
        match = _CLASS_FIELD.match(str(exc))
        if match is not None and match.group(1) == cls.__name__:
            raise ConfigError(f"{key}.{match.group(2)}: {match.group(3)}") from None
        raise ConfigError(f"{key}: {exc}") from None


def _processing_namespace() -> dict[str, Any]:
    """What the annotations of ``UploadPostJob`` name (``processing.PDFOptions`` ...): that
    module is imported only when a config sets processing options."""
    from bulkup.protocol import processing

    return {"processing": processing}


def _nested_class(hint: Any) -> type[Any] | None:
    """The option dataclass in ``X | None``, if the field holds one."""
    for arg in get_args(hint) or (hint,):
        if isinstance(arg, type) and hasattr(arg, "__dataclass_fields__"):
            return arg
    return None
