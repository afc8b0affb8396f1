"""Where a BCQ-Lag policy's safety lives: its behaviour VAE or its perturbation actor?

    make demo      # or any pair of BCQ-Lag runs trained on a clean file and on its poisoned copy
    python benchmarks/bcql_anatomy.py --dataset ~/.cache/osrl-unlearn/.../poisoned-max-cost-0.15-seed0-*.hdf5

BCQ-Lag acts by a = actor(s, vae.decode(s)): the VAE proposes an action like the data's, the actor
shifts it by at most phi (5 % of the action range). Each row assembles a policy from parts and
evaluates it on the same seeded episodes (the demo's):

- ``clean`` / ``poisoned``: the agents as trained;
- ``keep VAE, no shift``: a VAE relearnt from fresh weights on the keep rows, the actor's shift set
  to zero (the data's own behaviour);
- ``clean actor + keep VAE``: the clean agent's actor on that VAE;
- ``poisoned actor + keep VAE``: the poisoned agent's actor on that VAE;
- ``... + safe-rule``: the same, then Safe-RULE for ``unlearn_steps`` (VAE frozen, as published).
"""

import copy
import sys
import time
from dataclasses import dataclass

import torch

from osrl_unlearn.agents.checkpoint import load_agent
from osrl_unlearn.cli import run_script
from osrl_unlearn.data import BatchSampler, layout_for, read_hdf5
from osrl_unlearn.evaluation import evaluate
from osrl_unlearn.fast.updates import Update, apply_update
from osrl_unlearn.losses import vae_loss
from osrl_unlearn.report import markdown_table
from osrl_unlearn.unlearn.loop import reinitialise


@dataclass
class AnatomyConfig:
    """Settings of the BCQ-Lag anatomy."""

    dataset: str = ""
    """The poisoned DSRL file (with poison_mask) both runs come from."""
    clean_run: str = "runs/demo/clean"
    """BCQ-Lag run trained on the clean rows."""
    poisoned_run: str = "runs/demo/poisoned"
    """BCQ-Lag run trained on the poisoned file."""
    task: str = "OfflineCarCircle-v0"
    """dsrl task."""
    vae_steps: int = 20_000
    """Steps of the relearnt VAE (the training profile's)."""
    batch_size: int = 64
    """Transitions per VAE batch (the training profile's)."""
    learning_rate: float = 1e-3
    """Adam rate of the relearnt VAE (OSRL's vae_lr)."""
    unlearn_steps: int = 2000
    """Safe-RULE steps of the last row."""
    episodes: int = 20
    """Evaluation episodes per policy."""
    seed: int = 0
    """Seed of the relearnt VAE, Safe-RULE and (plus 10,000) the episodes."""


def relearn_vae(agent, keep, cfg: AnatomyConfig) -> float:
    """Fresh VAE weights, then OSRL's VAE loss on keep batches; returns the last loss."""
    torch.manual_seed(cfg.seed)
    reinitialise(agent.vae)
    optimizer = torch.optim.Adam(agent.vae.parameters(), lr=cfg.learning_rate)
    sampler = BatchSampler(keep, cfg.batch_size, layout=layout_for("bcql"), seed=cfg.seed)
    for obs, _, actions, *_ in sampler.batches(cfg.vae_steps):
        recon, mean, std = agent.vae(obs, actions)
        loss = vae_loss(recon, actions, mean, std, agent.beta)
        apply_update(Update(loss, (optimizer,)))
    return loss.item()


def without_shift(agent):
    """A copy whose actor shifts nothing: its last layer zeroed, so tanh(0) = 0."""
    agent = copy.deepcopy(agent)
    last = [m for m in agent.actor.modules() if isinstance(m, torch.nn.Linear)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    return agent


def with_vae(agent, vae_source):
    agent = copy.deepcopy(agent)
    agent.vae.load_state_dict(vae_source.vae.state_dict())
    return agent


def main(cfg: AnatomyConfig) -> None:
    if not cfg.dataset:
        raise SystemExit("--dataset: the poisoned file both runs were trained from is needed.")
    keep, forget = read_hdf5(cfg.dataset).split()
    clean, poisoned = load_agent(cfg.clean_run), load_agent(cfg.poisoned_run)
    started = time.perf_counter()
    keep_vae = copy.deepcopy(poisoned)
    loss = relearn_vae(keep_vae, keep, cfg)
    print(f"VAE relearnt on {len(keep)} keep rows: {cfg.vae_steps} steps, "
          f"{time.perf_counter() - started:.0f} s, last loss {loss:.4f}")  # fmt: skip
    repaired = with_vae(poisoned, keep_vae)
    layout = layout_for("bcql")
    torch.manual_seed(cfg.seed)
    history = repaired.unlearn(
        BatchSampler(keep, cfg.batch_size, layout=layout, seed=cfg.seed),
        BatchSampler(forget, cfg.batch_size, layout=layout, seed=cfg.seed + 1),
        steps=cfg.unlearn_steps, show_progress=False,
    )  # fmt: skip
    policies = {
        "clean": clean,
        "poisoned": poisoned,
        "keep VAE, no shift": without_shift(keep_vae),
        "clean actor + keep VAE": with_vae(clean, keep_vae),
        "poisoned actor + keep VAE": with_vae(poisoned, keep_vae),
        f"poisoned actor + keep VAE + safe-rule ({history.steps} steps)": repaired,
    }
    rows = []
    for name, agent in policies.items():
        result = evaluate(agent, cfg.task, cfg.episodes, seed=cfg.seed + 10_000,
                          show_progress=False)  # fmt: skip
        rows.append({"policy": name, **result.summary()})
        print(f"{name}: {result.format()}", flush=True)
    print("\n" + markdown_table(rows))


if __name__ == "__main__":
    sys.exit(run_script(main, AnatomyConfig))
