"""Typed settings, read from the environment in exactly this module.

Standard names of the ecosystem are honoured as they are (``REDIS_URL``,
``TOGETHER_API_KEY``, ``OPENAI_API_KEY``, ``AWS_*`` for boto3); ttsbatch's own
settings carry the ``TTSBATCH_`` prefix. Every variable is listed in the
README's configuration table.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TogetherSettings(BaseSettings):
    """Together AI provider: ``TOGETHER_API_KEY``, ``TOGETHER_BASE_URL``."""

    model_config = SettingsConfigDict(env_prefix="TOGETHER_", extra="ignore")

    api_key: SecretStr | None = None
    base_url: str = "https://api.together.ai/v1"


class OpenAISettings(BaseSettings):
    """OpenAI-compatible provider: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``."""

    model_config = SettingsConfigDict(env_prefix="OPENAI_", extra="ignore")

    api_key: SecretStr | None = None
    base_url: str = "https://api.openai.com/v1"


class ProviderLimits(BaseSettings):
    """Limits shared by every worker through Redis, per provider."""

    model_config = SettingsConfigDict(env_prefix="TTSBATCH_PROVIDER_", extra="ignore")

    concurrency: int = Field(default=8, ge=1, description="Requests in flight at once.")
    rps: float = Field(default=20.0, gt=0, description="Requests started per second.")
    timeout: float = Field(default=60.0, gt=0, description="Read timeout of one request (s).")


class Settings(BaseSettings):
    """Settings of every ttsbatch process (CLI, worker, API)."""

    model_config = SettingsConfigDict(env_prefix="TTSBATCH_", extra="ignore")

    store: str = Field(default="", description="s3://bucket/prefix or a folder path.")
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "TTSBATCH_REDIS_URL"),
    )
    together: TogetherSettings = Field(default_factory=TogetherSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    provider: ProviderLimits = Field(default_factory=ProviderLimits)
