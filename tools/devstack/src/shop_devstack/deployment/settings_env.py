"""Which environment variables a pydantic-settings class reads, and which it requires."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings


@dataclass(frozen=True)
class SettingsKeys:
    """The env names a Settings class accepts (upper case) and the subset it requires."""

    accepted: frozenset[str]
    required: frozenset[str]
    defaults: Mapping[str, object]


def load_settings_class(dotted: str) -> type[BaseSettings]:
    """Import 'package.module:Class'."""
    module_name, _, class_name = dotted.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, BaseSettings)):
        raise TypeError(f"{dotted} is not a pydantic-settings class")
    return cls


def settings_keys(cls: type[BaseSettings]) -> SettingsKeys:
    """Env names of every field: its alias(es) if set, else env_prefix + field name."""
    prefix = str(cls.model_config.get("env_prefix", "") or "")
    accepted: set[str] = set()
    required: set[str] = set()
    defaults: dict[str, object] = {}
    for name, field in cls.model_fields.items():
        alias = field.validation_alias or field.alias
        names: list[str]
        if isinstance(alias, str):
            names = [alias]
        elif isinstance(alias, AliasChoices):
            names = [c for c in alias.choices if isinstance(c, str)]
            names += [str(c.path[0]) for c in alias.choices if isinstance(c, AliasPath)]
        else:
            names = [f"{prefix}{name}"]
        upper = [n.upper() for n in names]
        accepted.update(upper)
        if field.is_required():
            required.add(upper[0])
        else:
            for env_name in upper:
                defaults[env_name] = field.get_default(call_default_factory=True)
    return SettingsKeys(frozenset(accepted), frozenset(required), defaults)


def env_problems(where: str, env: Mapping[str, object], keys: SettingsKeys) -> list[str]:
    """One line per unknown key and per required key that is missing."""
    given = {k.upper() for k in env}
    problems = [
        f"{where}: {key} is not a setting of this service (typo, or a key it ignores)"
        for key in sorted(given - keys.accepted)
    ]
    problems += [
        f"{where}: required setting {key} is missing" for key in sorted(keys.required - given)
    ]
    return problems
