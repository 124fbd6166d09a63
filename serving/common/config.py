"""Config files read with errors that name the file, and pydantic validation errors as readable problems."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def validation_problems(err: ValidationError) -> list[str]:
    problems = []
    for error in err.errors():
        key = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-")) or "(top level)"
        given = error.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        problems.append(f"{key}: {error['msg']}{shown}")
    return problems


def read_yaml(path: Path, error: type[Exception]):
    """The YAML document in `path`; an unreadable file or bad YAML raises `error` naming the file and the cause."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise error(f"{path}: cannot read: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML: {err}") from None


def validate_mapping(model: type[Model], raw, where: str, error: type[Exception]) -> Model:
    """`raw` (a parsed YAML document) as `model`; anything but a mapping, or any invalid key, raises `error` naming
    `where` and every problem."""
    if not isinstance(raw, dict):
        raise error(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise error(f"{where}: " + "; ".join(validation_problems(err))) from None
