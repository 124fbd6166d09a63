"""The base of every validated config and data file: unknown keys are errors (a misspelled key must not be ignored)."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
