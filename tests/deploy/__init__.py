"""Deployment checks: the image, the compose stack and the helm chart, with the real tools.

Shared here: the environment-variable contract (:func:`settings_env_names`,
:data:`ALLOWED_ENV`) that both the chart and the compose file must keep to.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]

#: boto3/botocore's standard variables (read by boto3 itself, plus AWS_REGION and
#: AWS_ENDPOINT_URL_S3, which ttsbatch.storage.s3.create_client reads too).
AWS_ENV = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_PROFILE",
        "AWS_CA_BUNDLE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    }
)

#: Names read outside the settings models, each for a reason.
ALLOWED_ENV = frozenset(
    {
        "TTSBATCH_DEBUG",  # ttsbatch/cli/main.py: tracebacks instead of one-line errors
    }
)

#: Modules whose BaseSettings models the processes in the image read.
SETTINGS_MODULES = ("ttsbatch.settings",)


def _alias_names(alias: object) -> set[str]:
    if isinstance(alias, str):
        return {alias}
    if isinstance(alias, AliasChoices):
        return {choice for choice in alias.choices if isinstance(choice, str)}
    if isinstance(alias, AliasPath):
        return {str(alias.path[0])}
    return set()


def model_env_names(model: type[BaseSettings]) -> set[str]:
    """Every variable ``model`` reads: prefix + field name, or the field's aliases.

    A field whose type is itself a ``BaseSettings`` group is built by its
    ``default_factory`` and reads its own ``env_prefix``.
    """
    prefix = str(model.model_config.get("env_prefix") or "")
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        annotation = field.annotation
        if inspect.isclass(annotation) and issubclass(annotation, BaseSettings):
            names |= model_env_names(annotation)
            continue
        aliases = _alias_names(field.validation_alias) or _alias_names(field.alias)
        names |= aliases or {prefix + field_name}
    return {name.upper() for name in names}


def settings_env_names() -> set[str]:
    """Every variable the settings models of :data:`SETTINGS_MODULES` read."""
    names: set[str] = set()
    for module_name in SETTINGS_MODULES:
        module = importlib.import_module(module_name)
        for _, member in inspect.getmembers(module, inspect.isclass):
            if issubclass(member, BaseSettings) and member.__module__ == module_name:
                names |= model_env_names(member)
    return names


def allowed_env_names() -> set[str]:
    """The contract: settings names, boto3's standard names and :data:`ALLOWED_ENV`."""
    return settings_env_names() | AWS_ENV | ALLOWED_ENV
