"""What a repaired run records about how it was made (``unlearning.json``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from osrl_unlearn.data.dataset import OfflineDataset
from osrl_unlearn.unlearn.loop import UnlearningHistory


def unlearning_metadata(
    method: str,
    config: Any,
    history: UnlearningHistory,
    forget: OfflineDataset,
    source_run: str | None = None,
) -> dict[str, Any]:
    """Method, settings (``config``, the method's config dataclass), steps, the forget set's size and hash, package version, and what the
    OSRL checkpoint could not carry over."""
    from osrl_unlearn import __version__

    return {
        "method": method,
        "config": asdict(config),
        "steps": history.steps,
        "stopped_early": history.stopped_early,
        "wall_seconds": round(history.wall_seconds, 3),
        "cpu_seconds": round(history.cpu_seconds, 3),
        "kappa_q": history.kappa,
        "sigma_q": history.sigma,
        "final_metrics": history.last(),
        "forget_transitions": len(forget),
        "forget_sha256": forget.content_hash(),
        "source_run": source_run,
        "osrl_unlearn_version": __version__,
        "not_restored": (
            "optimizers (rebuilt fresh: OSRL checkpoints hold none), the PID Lagrangian "
            "controller, log_alpha, COptiDICE's tau/lambda and dataset std"
        ),
    }
