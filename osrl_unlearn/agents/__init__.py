"""OSRL's agents with ``unlearn``, and loading/saving OSRL run folders."""

from osrl_unlearn.agents.actor_critic import BCQL, BEARL, CPQ
from osrl_unlearn.agents.checkpoint import AGENTS, load_agent, save_run
from osrl_unlearn.agents.coptidice import COptiDICE

__all__ = ["AGENTS", "BCQL", "BEARL", "COptiDICE", "CPQ", "load_agent", "save_run"]
