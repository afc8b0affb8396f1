"""osrl-unlearn: repair offline safe RL policies trained on poisoned data.

``from osrl_unlearn import BCQL, BEARL, CPQ, COptiDICE, load_agent``: OSRL's agents with
``unlearn(keep_loader, forget_loader)``. Imported lazily, so that ``python -m
osrl_unlearn.patch_safety_gymnasium`` runs before anything imports the stack.
"""

from osrl_unlearn.kernels import pin_cpu_kernels

__version__ = "0.1.0"

pin_cpu_kernels()  # before any torch kernel runs: the same kernel branch on any AVX2 CPU

_AGENT_EXPORTS = ("BCQL", "BEARL", "CPQ", "COptiDICE", "load_agent", "save_run")
_CONFIG_EXPORTS = ("RelabelConfig", "SafeRuleConfig", "TrajDeleterConfig", "FinetuneConfig")
__all__ = [*_AGENT_EXPORTS, *_CONFIG_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _AGENT_EXPORTS:
        from osrl_unlearn import agents

        return getattr(agents, name)
    if name in _CONFIG_EXPORTS:
        from osrl_unlearn.unlearn import config

        return getattr(config, name)
    raise AttributeError(f"module 'osrl_unlearn' has no attribute {name!r}")
