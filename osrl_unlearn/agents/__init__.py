"""OSRL's agents with ``unlearn``, and loading/saving OSRL run folders."""

from osrl_unlearn.agents.actor_critic import BCQL, BEARL, CPQ
from osrl_unlearn.agents.coptidice import COptiDICE

AGENTS = {"bcql": BCQL, "bearl": BEARL, "cpq": CPQ, "coptidice": COptiDICE}

from osrl_unlearn.agents.checkpoint import load_agent, save_run  # noqa: E402

__all__ = ["AGENTS", "BCQL", "BEARL", "COptiDICE", "CPQ", "load_agent", "save_run"]
