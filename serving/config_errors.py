"""Config files read with errors that name the file, and pydantic validation errors as readable problems."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError


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
