"""Benchmark results -> benchmarks/results/<profile>.md (tables) and <profile>-plots/*.png.

python benchmarks/report.py --profile cpu
python benchmarks/report.py --profile smoke --results_dir /tmp/smoke --out /tmp/smoke.md
python benchmarks/report.py --profile cpu --reference safe-rule+actor-reset+q-ref-0
"""

import sys
from dataclasses import dataclass
from typing import Optional

from osrl_unlearn.benchmark.report import DEFAULT_REFERENCE, write_report
from osrl_unlearn.benchmark.stats import RESAMPLES
from osrl_unlearn.cli import run_script


@dataclass
class ReportConfig:
    """Settings of the benchmark report."""

    profile: str = "cpu"
    """Profile whose results to report."""
    results_dir: Optional[str] = None
    """Results folder (default benchmarks/results/<profile>)."""
    out: Optional[str] = None
    """Report file (default benchmarks/results/<profile>.md)."""
    reference: str = DEFAULT_REFERENCE
    """Policy every defence is compared with on the same episodes (the default or best method)."""
    resamples: int = RESAMPLES
    """Bootstrap resamples per 95 % interval."""


def main(cfg: ReportConfig) -> None:
    results_dir = cfg.results_dir or f"benchmarks/results/{cfg.profile}"
    out = write_report(results_dir, cfg.out or f"benchmarks/results/{cfg.profile}.md", cfg.profile,
                       reference=cfg.reference, resamples=cfg.resamples)  # fmt: skip
    print(f"report: {out}")


if __name__ == "__main__":
    sys.exit(run_script(main, ReportConfig))
