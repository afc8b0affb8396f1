"""The attack x agent x defence grid against OSRL baselines, resumable, on local processes or Ray.

    python benchmarks/run.py --profile smoke                      # minutes; what CI runs
    python benchmarks/run.py --profile cpu --tasks "[OfflineCarCircle-v0]" --attacks "[max-cost]"
    python benchmarks/run.py --profile cpu --backend ray --workers 8   # on a Ray cluster
    python benchmarks/run.py --profile cpu --defend all           # repair every run, not only
                                                                  # those a repair can be judged on
    python benchmarks/report.py --profile cpu                     # -> benchmarks/results/cpu.md

Each policy's result is written to benchmarks/results/<profile>/cells/... as soon as it is
measured; run the same command again to resume or to extend the grid.
"""

import sys

from osrl_unlearn.benchmark.grid import GridConfig, execute, plan
from osrl_unlearn.cli import run_script


def main(cfg: GridConfig) -> None:
    jobs = plan(cfg)
    pending = sum(len(job.pending()) for job in jobs)
    print(f"{len(jobs)} jobs, up to {pending} policies to measure ({cfg.profile} profile, "
          f"defend={cfg.defend_rule()})")  # fmt: skip
    measured = execute(cfg, jobs)
    print(f"measured {measured} policies; results in {jobs[0].results_dir if jobs else '-'}")


if __name__ == "__main__":
    sys.exit(run_script(main, GridConfig))
