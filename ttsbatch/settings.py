"""Typed settings, read from the environment in exactly this module.

Standard names of the ecosystem are honoured as they are (``REDIS_URL``,
``TOGETHER_API_KEY``, ``OPENAI_API_KEY``, ``AWS_*`` for boto3); ttsbatch's own
settings carry the ``TTSBATCH_`` prefix. Every variable is listed in the
README's configuration table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ttsbatch.models import EngineName


class TogetherSettings(BaseSettings):
    """Together AI provider: ``TOGETHER_API_KEY``, ``TOGETHER_BASE_URL``."""

    model_config = SettingsConfigDict(env_prefix="TOGETHER_", extra="ignore")

    api_key: SecretStr | None = None
    base_url: str = "https://api.together.ai/v1"
    stream: bool = Field(default=True, description="Stream SSE with word times (false: whole WAV).")


class OpenAISettings(BaseSettings):
    """OpenAI-compatible provider: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``."""

    model_config = SettingsConfigDict(env_prefix="OPENAI_", extra="ignore")

    api_key: SecretStr | None = None
    base_url: str = "https://api.openai.com/v1"
    stream_format: Literal["audio", "sse"] = "audio"
    captioned: bool = Field(
        default=False, description="Kokoro-FastAPI's /dev/captioned_speech, with word times."
    )
    estimate_timings: bool = Field(
        default=False, description="Without provider word times, estimate them (marked estimated)."
    )


class ProviderLimits(BaseSettings):
    """Limits shared by every worker through Redis, per provider."""

    model_config = SettingsConfigDict(env_prefix="TTSBATCH_PROVIDER_", extra="ignore")

    concurrency: int = Field(default=8, ge=1, description="Requests in flight at once.")
    rps: float = Field(default=20.0, gt=0, description="Requests started per second.")
    timeout: float = Field(default=60.0, gt=0, description="Read timeout of one request (s).")


#: The engines a job may name, as plain strings (click's choices, messages).
ENGINES: tuple[str, ...] = tuple(e.value for e in EngineName)
#: Engines that speak through a provider and need a model and a voice.
PROVIDER_ENGINES: tuple[str, ...] = tuple(e.value for e in EngineName if not e.in_process)
#: A model and a voice of each provider engine: named in messages, and what
#: ``ttsbatch dev --engine`` uses when given neither.
PROVIDER_EXAMPLES: dict[str, tuple[str, str]] = {
    EngineName.TOGETHER: ("hexgrad/Kokoro-82M", "af_heart"),
    EngineName.OPENAI: ("gpt-4o-mini-tts", "alloy"),
}


class JobDefaults(BaseSettings):
    """The deployment's engine, model and voice for jobs that do not name them.

    ``TTSBATCH_DEFAULT_ENGINE`` is used by the API (jobs, runs and schedules)
    and by ``ttsbatch dev --engine``; ``_MODEL`` and ``_VOICE`` fill in only
    for that engine (a job that names another engine gets no default voice
    meant for a different one).
    """

    model_config = SettingsConfigDict(env_prefix="TTSBATCH_DEFAULT_", extra="ignore")

    engine: EngineName = Field(
        default=EngineName.ESPEAK, description="Engine of a job that names none."
    )
    model: str | None = Field(default=None, description="Model of such jobs (provider engines).")
    voice: str | None = Field(default=None, description="Voice of such jobs.")

    @model_validator(mode="after")
    def _model_only_for_providers(self) -> Self:
        if self.model and self.engine not in PROVIDER_ENGINES:
            raise ValueError(
                f"TTSBATCH_DEFAULT_MODEL={self.model} is for a provider engine"
                f" ({', '.join(PROVIDER_ENGINES)}); {self.engine} takes no model:"
                " unset it, or set TTSBATCH_DEFAULT_ENGINE"
            )
        return self


class ApiSettings(BaseSettings):
    """The REST API (``ttsbatch api``): keys, limits, sources and webhooks."""

    model_config = SettingsConfigDict(env_prefix="TTSBATCH_API_", extra="ignore")

    keys: SecretStr = Field(
        default=SecretStr(""), description="API keys, comma-separated; each key is a tenant."
    )
    keys_file: str = Field(default="", description="A file of API keys, one per line (# comments).")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_request_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_chars_per_job: int = Field(default=5_000_000, ge=1)
    max_documents_per_job: int = Field(default=100, ge=1)
    max_concurrent_jobs: int = Field(default=20, ge=1, description="Active jobs per tenant.")
    source_buckets: str = Field(
        default="", description="Buckets the API may read s3:// sources from, comma-separated."
    )
    result_url_ttl: int = Field(default=3600, ge=60, description="Presigned URL lifetime (s).")
    webhook_secret: SecretStr = Field(
        default=SecretStr(""), description="HMAC-SHA256 key of webhook signatures."
    )
    webhook_allow_private: bool = Field(
        default=False, description="Allow webhooks to private and loopback addresses."
    )
    webhook_attempts: int = Field(default=5, ge=1)
    monthly_cost_cap: float = Field(
        default=0,
        ge=0,
        description="USD a tenant may spend in a calendar month (UTC); 0: no cap.",
    )
    job_ttl_hours: float = Field(
        default=0,
        ge=0,
        description="Lifetime of a job's outputs and chunks, from its acceptance, unless the"
        " job gives its own; 0 keeps them.",
    )
    require_workers: bool = Field(
        default=True,
        description="Refuse (503) a job whose engine no live worker serves; false when"
        " workers scale up from zero on queue length.",
    )


class WorkerSettings(BaseSettings):
    """Worker tuning: ``TTSBATCH_WORKER_*`` (retries, budgets, leases, broker timeout)."""

    model_config = SettingsConfigDict(env_prefix="TTSBATCH_WORKER_", extra="ignore")

    retry_attempts: int = Field(default=8, ge=1, description="Attempts at one chunk.")
    retry_cap: float = Field(default=60.0, gt=0, description="Longest retry countdown (s).")
    failure_budget: int = Field(
        default=0, ge=0, description="Chunks that may fail for good before the job fails."
    )
    retry_budget: float = Field(
        default=3.0, gt=0, description="Retries per chunk of a job before the whole job fails."
    )
    lease_ttl: float = Field(
        default=15.0, gt=0, description="Lifetime of a provider's and a chunk's lease (s)."
    )
    visibility_timeout: float | None = Field(
        default=None, gt=0, description="Broker visibility timeout (s); computed when unset."
    )


#: Published prices in USD per million characters, by ``engine/model`` (or ``engine``):
#: Together's price list (Orpheus $15, Kokoro $4), OpenAI's (tts-1 $15, tts-1-hd $30).
#: TTSBATCH_PRICES (JSON, the same shape) replaces the table.
DEFAULT_PRICES: dict[str, float] = {
    "espeak": 0.0,
    "together/canopylabs/orpheus-3b-0.1-ft": 15.0,
    "together/hexgrad/Kokoro-82M": 4.0,
    "openai/tts-1": 15.0,
    "openai/tts-1-hd": 30.0,
}


class CacheSettings(BaseSettings):
    """The chunk cache (``TTSBATCH_CACHE_*``): where the CLI keeps it, its budget, its scope."""

    model_config = SettingsConfigDict(env_prefix="TTSBATCH_CACHE_", extra="ignore")

    dir: str = Field(
        default="",
        description="The local executor's cache folder; empty: $XDG_CACHE_HOME/ttsbatch"
        " (~/.cache/ttsbatch). TTSBATCH_CACHE also sets it.",
    )
    max_bytes: int = Field(
        default=10 * 1024**3, ge=0, description="The local cache's size budget (LRU eviction)."
    )
    store_max_bytes: int = Field(
        default=100 * 1024**3,
        ge=0,
        description="The size budget of the store's cache, every scope together (the beat"
        " evicts the least recently used every hour).",
    )
    max_age_days: float | None = Field(
        default=None,
        gt=0,
        description="Entries unused this long are removed (both caches); unset: size only.",
    )
    shared: bool = Field(
        default=False,
        description="One cache for every tenant of the API. A hit tells a tenant that someone"
        " spoke that text before: off by default (each tenant has its own).",
    )

    @property
    def max_age(self) -> float | None:
        """:attr:`max_age_days` in seconds (``None``: size only)."""
        return self.max_age_days * 86400 if self.max_age_days else None

    def folder(self) -> Path:
        """The local cache folder: TTSBATCH_CACHE_DIR, TTSBATCH_CACHE, XDG's cache home, ~/.cache."""
        chosen = self.dir or os.environ.get("TTSBATCH_CACHE", "")
        if chosen:
            return Path(chosen).expanduser()
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "ttsbatch"


class Settings(BaseSettings):
    """Settings of every ttsbatch process (CLI, worker, API)."""

    model_config = SettingsConfigDict(env_prefix="TTSBATCH_", extra="ignore")

    store: str = Field(default="", description="s3://bucket/prefix or a folder path.")
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias="REDIS_URL",
    )
    together: TogetherSettings = Field(default_factory=TogetherSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    provider: ProviderLimits = Field(default_factory=ProviderLimits)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    defaults: JobDefaults = Field(default_factory=JobDefaults)
    # Not "cache": TTSBATCH_CACHE (the folder, as the issue and XDG tools name it) would be
    # read as this nested model's JSON.
    chunk_cache: CacheSettings = Field(default_factory=CacheSettings)
    prices: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="USD per million characters by engine/model or engine (TTSBATCH_PRICES, JSON).",
    )

    def price_of(self, engine: str, model: str | None) -> float | None:
        """The price per million characters of ``engine``'s ``model``, if the table has it."""
        return self.prices.get(f"{engine}/{model}", self.prices.get(engine))
