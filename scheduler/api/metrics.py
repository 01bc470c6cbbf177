"""Prometheus metrics of one app, in a registry of its own (apps in tests do not collide)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class Metrics:
    """The API's counters and histograms."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "ttsbatch_api_requests",
            "HTTP requests answered, by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ttsbatch_api_request_seconds",
            "Time to answer a request, by route.",
            ["method", "route"],
            registry=self.registry,
        )
        # A request's series, by (method, route, status): labels() locks and builds a key.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.jobs = Counter(
            "ttsbatch_api_jobs_submitted",
            "Jobs submitted, by engine.",
            ["engine"],
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and record the time to its response's start."""
        series = self._series.get((method, route, status))
        if series is None:
            series = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._series[(method, route, status)] = series
        count, latency = series
        count.inc()
        latency.observe(seconds)
