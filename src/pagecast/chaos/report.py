"""One row per scenario, its pass criteria, and the table ``pagecast chaos`` prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .gaps import percentile


@dataclass
class Row:
    scenario: str
    runs: int = 0
    failures: list[str] = field(default_factory=list)
    recoveries: list[float] = field(default_factory=list)
    freeze: float | None = None  # the longest picture freeze the TV (or the stream) showed, s
    stalls: int | None = None
    left: int | None = None  # processes of pagecast's left when everything should be gone
    fd_delta: int | None = None
    thread_delta: int | None = None
    rss_growth: float | None = None  # the service process's, relative
    criteria: list[tuple[str, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool) -> None:
        self.criteria.append((name, bool(ok)))

    def fail(self, message: str) -> None:
        self.failures.append(message)

    @property
    def passed(self) -> bool:
        return not self.failures and all(ok for _, ok in self.criteria)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recovery_p50"] = percentile(self.recoveries, 50)
        data["recovery_p95"] = percentile(self.recoveries, 95)
        data["passed"] = self.passed
        return data


HEADERS = ["scenario", "runs", "failures", "recovery p50", "p95", "longest freeze", "stalls", "procs left", "fd Δ", "threads Δ", "RSS Δ", "pass"]


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def _n(value: int | None, signed: bool = False) -> str:
    return "—" if value is None else (f"{value:+d}" if signed else str(value))


def cells(row: Row) -> list[str]:
    return [
        row.scenario, str(row.runs), str(len(row.failures)),
        _s(percentile(row.recoveries, 50)), _s(percentile(row.recoveries, 95)), _s(row.freeze),
        _n(row.stalls), _n(row.left), _n(row.fd_delta, True), _n(row.thread_delta, True),
        "—" if row.rss_growth is None else f"{row.rss_growth * 100:+.1f} %",
        "yes" if row.passed else "NO",
    ]


def explain(row: Row) -> list[str]:
    """The lines under the table: what failed, which criteria did not hold, and notes."""
    out = [f"  {row.scenario}: {message}" for message in row.failures[:8]]
    if len(row.failures) > 8:
        out.append(f"  {row.scenario}: … and {len(row.failures) - 8} more failures")
    out += [f"  {row.scenario}: criterion not met: {name}" for name, ok in row.criteria if not ok]
    out += [f"  {row.scenario}: {note}" for note in row.notes]
    return out
