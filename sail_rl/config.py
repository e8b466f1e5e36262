"""Recipes: defaults (dataclass fields) -> YAML -> CLI overrides -> derived values -> one validation pass.

Each component owns a config dataclass beside its code (`ModelConfig` in sail_rl/model,
`RolloutConfig` in rollouts, ...). A recipe is a dataclass whose fields are those sections;
a YAML key is a field name, one to one. Anything that does not fit is a `ConfigError` that
names the key, where it was set (its line in the file, or the command-line override) and
the nearest valid key. Every float must be finite; each dataclass's `validate` checks its
ranges with `check_bounds` (a table of rules such as `"> 0"` or `"(0, 1]"`). A recipe that has
values following from others (seeds from `run.seed`, the trainer's temperature from the
rollout's, absolute paths) fills them in its `derive(given)`, once, before validation.

    recipe = load_recipe(RunRecipe, "recipes/mathvista_grpo.yaml", ["rollout.temperature=0.7"])
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import operator
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from sail_rl.errors import ConfigError

T = TypeVar("T")


# ---------------------------------------------------------------- YAML with line numbers


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records the line of every mapping key, by dotted path."""


def _load_yaml_with_lines(text: str, source: str) -> tuple[Any, dict[str, int]]:
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML ({problem}); check indentation and quoting") from None

    def walk(node: yaml.Node | None, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                path = f"{prefix}{key_node.value}"
                lines[path] = key_node.start_mark.line + 1
                walk(value_node, path + ".")
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                path = f"{prefix.rstrip('.')}[{i}]"
                lines[path] = item.start_mark.line + 1
                walk(item, path + ".")

    walk(root, "")
    data = yaml.safe_load(text) if root is not None else {}
    return data, lines


# ---------------------------------------------------------------- building dataclasses


class _Ctx:
    """Where a value came from, for error messages: a file line, or a command-line override."""

    def __init__(self, source: str, lines: dict[str, int], overrides: dict[str, str] | None = None):
        self.source = source
        self.lines = lines
        self.overrides = overrides or {}  # dotted key -> the override's text

    def where(self, path: str) -> str:
        for key, text in self.overrides.items():
            if path == key or path.startswith((key + ".", key + "[")):
                return f"command-line override '{text}'"
        line = self.lines.get(path)
        if line is None and "[" in path:
            line = self.lines.get(path.split("[")[0])
        return f"{self.source}:{line}" if line else self.source


def _nearest(key: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if match:
        return f"did you mean '{match[0]}'?"
    return f"valid keys: {', '.join(sorted(valid))}"


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, path: str, ctx: _Ctx) -> Any:
    """Check `value` against annotation `tp` and convert (dicts to dataclasses, ints to floats)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, path, ctx)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise _type_error(value, tp, path, ctx)
    if origin is Literal:
        if value not in typing.get_args(tp):
            choices = [str(a) for a in typing.get_args(tp)]
            hint = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
            extra = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ConfigError(
                f"{ctx.where(path)}: '{path}' must be one of {', '.join(choices)}, got {value!r}{extra}"
            )
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _type_error(value, tp, path, ctx)
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [_convert(v, item_tp, f"{path}[{i}]", ctx) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(value, tp, path, ctx)
        _, val_tp = typing.get_args(tp) or (Any, Any)
        return {str(k): _convert(v, val_tp, f"{path}.{k}", ctx) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise _type_error(value, tp, path, ctx)
        return _build(tp, value, path + ".", ctx)
    if tp is bool:
        if not isinstance(value, bool):
            raise _type_error(value, tp, path, ctx)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise _type_error(value, tp, path, ctx)
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                raise _type_error(value, tp, path, ctx) from None
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, tp, path, ctx)
        else:
            number = float(value)
        if not math.isfinite(number):  # nan and inf pass range checks or crash deep inside a run
            raise ConfigError(f"{ctx.where(path)}: '{path}' must be a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise _type_error(value, tp, path, ctx)
        return str(value)
    return value


def _type_error(value: Any, tp: Any, path: str, ctx: _Ctx) -> ConfigError:
    return ConfigError(
        f"{ctx.where(path)}: '{path}' expects {_type_name(tp)}, got {type(value).__name__} {value!r}"
    )


# Field metadata of a value the recipe derives, never reads from the file: {DERIVED_FROM: "rollout.temperature"}.
# Setting it is refused at load, and `to_dict` leaves it out (a dumped recipe loads again).
DERIVED_FROM = "derived_from"


def _given_keys(data: dict, prefix: str = "") -> frozenset[str]:
    """The dotted keys a recipe sets (mappings walked, lists not): {"run.seed", "trainer", ...}."""
    keys: set[str] = set()
    for key, value in data.items():
        keys.add(f"{prefix}{key}")
        if isinstance(value, dict):
            keys |= _given_keys(value, f"{prefix}{key}.")
    return frozenset(keys)


def _build(cls: type[T], data: dict, prefix: str, ctx: _Ctx) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(
                f"{ctx.where(path)}: unknown key '{path}' in {cls.__name__}; {_nearest(str(key), list(fields))}"
            )
        source = fields[key].metadata.get(DERIVED_FROM)
        if source:
            raise ConfigError(f"{ctx.where(path)}: '{path}' is not a recipe key: it is set from {source}; drop it")
        kwargs[key] = _convert(value, hints[key], path, ctx)
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # a required field without default
        raise ConfigError(f"{ctx.where(prefix.rstrip('.'))}: {cls.__name__}: {exc}") from None
    derive = getattr(obj, "derive", None)
    if callable(derive):  # the recipe's shared values, filled once (EasyR1's root `post_init`)
        derive(given=_given_keys(data))
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError as exc:
            path = prefix + exc.key if exc.key else prefix.rstrip(".")
            raise ConfigError(f"{ctx.where(path)}: {exc}") from None
    return obj


# ---------------------------------------------------------------- range checks for validate()

_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _satisfies(value: float, rule: str) -> bool:
    """`rule` is `"OP N"` (OP one of > >= < <=) or an interval `"(a, b]"`; NaN satisfies none."""
    if rule[0] in "([":
        low, high = (float(x) for x in rule[1:-1].split(","))
        above = value > low if rule[0] == "(" else value >= low
        below = value < high if rule[-1] == ")" else value <= high
        return above and below
    op, bound = rule.split()
    return _COMPARE[op](value, float(bound))


def check_bounds(obj: Any, section: str, rules: dict[str, str | tuple[str, str]]) -> None:
    """Check numeric fields of `obj` against `rules` ({field: rule} or {field: (rule, hint)}).

    None passes (null means "off"); a list is checked item by item. The error names
    `section.field` and carries the field as its key, so the loader cites the right line.

    >>> from types import SimpleNamespace
    >>> check_bounds(SimpleNamespace(lr=0.0), "trainer", {"lr": "> 0"})
    Traceback (most recent call last):
    ...
    sail_rl.errors.ConfigError: trainer.lr must be > 0, got 0.0
    """
    for name, rule in rules.items():
        rule, hint = rule if isinstance(rule, tuple) else (rule, "")
        value = getattr(obj, name)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and not _satisfies(item, rule):
                wording = f"in {rule}" if rule[0] in "([" else rule
                raise ConfigError(f"{section}.{name} must be {wording}, got {item!r}{'; ' + hint if hint else ''}", key=name)


def absolute_path(path: str | None) -> str | None:
    """`path` made absolute from the working directory (`~` expanded; links kept); None stays None."""
    return None if path is None else str(Path(path).expanduser().absolute())


def from_dict(cls: type[T], data: dict | None, source: str = "<dict>") -> T:
    """Build `cls` from a plain dict with the same checks as a recipe file."""
    return _build(cls, data or {}, "", _Ctx(source, {}))


# ---------------------------------------------------------------- overrides and loading


def parse_override(text: str) -> tuple[list[str], Any]:
    """`'rollout.temperature=0.7'` -> (['rollout', 'temperature'], 0.7). Values are YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}': expected section.key=value, e.g. trainer.lr=1e-6")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[keys[-1]] = value
    return data


def load_recipe(cls: type[T], path: str | Path | None, overrides: list[str] | None = None) -> T:
    """Defaults -> YAML file -> `section.key=value` overrides -> validation, as one `cls`."""
    data: dict = {}
    lines: dict[str, int] = {}
    overrides = overrides or []
    source = "<defaults>"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"recipe file not found: {path}; pass a path like recipes/mathvista_grpo.yaml")
        source = str(path)
        data, lines = _load_yaml_with_lines(path.read_text(), source)
        data = data or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a recipe must be a mapping of sections, got {type(data).__name__}")
    if overrides:
        data = apply_overrides(data, overrides)
        source = source if path else "<command line>"
    cited = {".".join(parse_override(text)[0]): text for text in overrides}
    return _build(cls, data, "", _Ctx(source, lines, cited))


def to_dict(obj: Any) -> Any:
    """A config back to plain data (for --print-config and checkpoints)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if DERIVED_FROM not in f.metadata}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=False)
