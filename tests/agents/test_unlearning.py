"""The shared harness: every agent through the same unlearning checks."""

import copy

import numpy as np
import pytest
import torch
from osrl.common.exp_util import load_config_and_model

from osrl_unlearn import SafeRuleConfig, load_agent, save_run
from osrl_unlearn.data import BatchSampler, OfflineDataset
from osrl_unlearn.errors import ConfigError
from osrl_unlearn.fast.updates import run_updates
from osrl_unlearn.stack import import_osrl_algorithms
from osrl_unlearn.unlearn import UnlearningError
from tests.agents.conftest import TINY_CONFIG, make_agent, poisoned_arrays, samplers

FAST = SafeRuleConfig(steps=5, actor_lr=1e-3, critic_lr=1e-3)


def parameters(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def critic_modules(agent, name):
    if name == "coptidice":
        return (agent.nu_network, agent.chi_network)
    return (agent.critic, agent.cost_critic)


def test_unlearn_runs_draws_exact_batches_and_changes_parameters(agent_name, split_data):
    agent = make_agent(agent_name)
    before = parameters(agent)
    keep, forget = samplers(agent_name, split_data)
    history = agent.unlearn(keep, forget, config=FAST, steps=7, show_progress=False)
    assert keep.batches_drawn == 7 and forget.batches_drawn == 7
    assert history.steps == 7 and len(history.metrics) == 7
    assert all(np.isfinite(v) for m in history.metrics for v in m.values())
    assert history.series("unlearn/beta_f")[0] == pytest.approx(0.1)
    after = agent.state_dict()
    actor_keys = [k for k in before if k.startswith("actor.")]
    assert any(not torch.equal(before[k], after[k]) for k in actor_keys)
    for module in critic_modules(agent, agent_name):
        prefix = next(n for n, m in agent.named_children() if m is module)
        assert any(
            not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix + ".")
        )


def test_actor_step_leaves_critics_untouched(agent_name, split_data):
    agent = make_agent(agent_name)
    keep, forget = samplers(agent_name, split_data)
    agent.unlearn(keep, forget, config=FAST, steps=1, show_progress=False)  # builds optimizers
    from osrl_unlearn.unlearn.loop import UnlearningContext

    ctx = UnlearningContext(config=FAST, kappa=float(agent.qc_thres), sigma=0.1, beta=0.5)
    critics = critic_modules(agent, agent_name)
    before = [parameters(m) for m in critics]
    grads = [p.grad.clone() for m in critics for p in m.parameters() if p.grad is not None]
    actor_before = parameters(agent.actor)
    run_updates(agent._actor_unlearning_step(keep.sample(), forget.sample(), ctx))
    for module, params in zip(critics, before, strict=True):
        for key, value in module.state_dict().items():
            assert torch.equal(value, params[key])
    assert any(not torch.equal(v, agent.actor.state_dict()[k]) for k, v in actor_before.items())
    after = [p.grad for m in critics for p in m.parameters() if p.grad is not None]
    assert all(torch.equal(a, b) for a, b in zip(grads, after, strict=True))  # no gradient to them


def test_same_seed_same_result(agent_name, split_data):
    results = []
    for _ in range(2):
        agent = make_agent(agent_name, seed=3)
        keep, forget = samplers(agent_name, split_data, seed=5)
        torch.manual_seed(7)
        agent.unlearn(keep, forget, config=FAST, show_progress=False)
        results.append(agent.state_dict())
    for key, value in results[0].items():
        assert torch.equal(value, results[1][key]), key


def test_save_then_load_gives_identical_actions_and_osrl_reads_the_run(
    agent_name, split_data, tmp_path
):
    agent = make_agent(agent_name)
    keep, forget = samplers(agent_name, split_data)
    agent.unlearn(keep, forget, config=FAST, show_progress=False)
    config = {
        **TINY_CONFIG,
        "prefix": agent_name.upper() if agent_name != "coptidice" else "COptiDICE",
    }
    run = save_run(agent, tmp_path / "run", config, {"method": "safe-rule"})
    loaded = load_agent(run)
    assert type(loaded) is type(agent)
    obs = np.random.default_rng(0).normal(size=8).astype(np.float32)
    agent.eval()
    actions = []
    for model in (agent, loaded):
        torch.manual_seed(11)  # BCQ-Lag samples its VAE
        actions.append(model.act(obs)[0] if agent_name == "bcql" else model.act(obs, True, True)[0])
    np.testing.assert_array_equal(actions[0], actions[1])
    # OSRL's own loader and class read the folder we wrote
    osrl_config, payload = load_config_and_model(str(run), False)
    assert osrl_config["task"] == "OfflineCarCircle-v0"
    osrl_class = getattr(import_osrl_algorithms(), type(agent).__name__)
    plain = copy.deepcopy(loaded)
    plain.__class__ = osrl_class  # the same modules; OSRL's class must accept the weights
    plain.load_state_dict(payload["model_state"])
    with pytest.raises(FileExistsError):
        save_run(agent, run, config)


def test_empty_forget_loader_is_refused(agent_name, split_data):
    agent = make_agent(agent_name)
    keep, _ = samplers(agent_name, split_data)
    with pytest.raises(UnlearningError, match="forget set is empty"):
        agent.unlearn(keep, [], config=FAST, show_progress=False)


def test_dimension_mismatch_is_refused(split_data):
    agent = make_agent("bcql")
    arrays = poisoned_arrays()
    arrays["observations"] = arrays["observations"][:, :5]
    arrays["next_observations"] = arrays["next_observations"][:, :5]
    keep, forget = OfflineDataset.from_arrays(arrays).split()
    with pytest.raises(
        UnlearningError,
        match="5 observation and 2 action features but the agent was built for 8 and 2",
    ):
        agent.unlearn(
            BatchSampler(keep, 8), BatchSampler(forget, 8), config=FAST, show_progress=False
        )


def test_nan_batch_is_refused(split_data):
    agent = make_agent("cpq")
    keep, forget = samplers("cpq", split_data)
    bad = list(forget.batches(3))
    bad[1][3][0] = float("nan")
    with pytest.raises(UnlearningError, match="forget batch has NaN.*position 3"):
        agent.unlearn(keep, bad, config=FAST, steps=3, show_progress=False)


def test_loader_that_runs_out_is_refused(split_data):
    agent = make_agent("cpq")
    keep, forget = samplers("cpq", split_data)
    with pytest.raises(UnlearningError, match="ran out after 2 of 4"):
        agent.unlearn(keep, list(forget.batches(2)), config=FAST, steps=4, show_progress=False)


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="q_ref_percentile"):
        SafeRuleConfig(q_ref_percentile=120)
    with pytest.raises(ConfigError, match="actor_forget_variant"):
        SafeRuleConfig(actor_forget_variant="gentle")


def test_fixed_beta_ablation_keeps_beta(split_data):
    agent = make_agent("cpq")
    keep, forget = samplers("cpq", split_data)
    config = SafeRuleConfig(steps=4, adaptive_beta=False, beta_init=1.0)
    history = agent.unlearn(keep, forget, config=config, show_progress=False)
    assert history.series("unlearn/beta_f") == [1.0] * 4


@pytest.mark.parametrize("name", ["bcql", "bearl", "cpq"])
def test_critics_forget_the_poison_and_keep_the_clean_data(name, split_data):
    """Q_c on forget transitions ends above kappa + sigma, Q_r below Q̄_r; keep error bounded."""
    agent = make_agent(name)
    keep, forget = samplers(name, split_data, batch_size=64)
    config = SafeRuleConfig(steps=300, actor_lr=1e-3, critic_lr=1e-3)
    history = agent.unlearn(keep, forget, config=config, show_progress=False)
    obs, _, actions = (
        torch.from_numpy(a)
        for a in (
            split_data[1].observations,
            split_data[1].next_observations,
            split_data[1].actions,
        )
    )
    with torch.no_grad():
        qc_forget = agent._cost_heads(obs, actions).mean().item()
        q_forget = agent._reward_heads(obs, actions).mean().item()
    last = history.metrics[-20:]
    q_ref = float(np.mean([m["unlearn/q_ref"] for m in last]))
    assert qc_forget > history.kappa + history.sigma
    assert q_forget < q_ref
    keep_error = [m["unlearn/critic_keep_loss"] for m in history.metrics]
    assert np.mean(keep_error[-20:]) < max(5.0, 2 * np.mean(keep_error[:20]))


def test_coptidice_lowers_the_likelihood_of_forget_actions(split_data):
    agent = make_agent("coptidice")
    keep, forget = samplers("coptidice", split_data, batch_size=64)
    obs, actions = (
        torch.from_numpy(a) for a in (split_data[1].observations, split_data[1].actions)
    )

    def forget_logp():
        with torch.no_grad():
            _, _, dist = agent.actor(obs, False, True, True)
            return dist.log_prob(actions).sum(-1).mean().item()

    before = forget_logp()
    history = agent.unlearn(
        keep, forget, config=SafeRuleConfig(steps=200, actor_lr=1e-3), show_progress=False
    )
    assert forget_logp() < before - 0.5
    assert history.series("unlearn/beta_f")[-1] > 0.1  # chi still calls forget states safe


def test_checkpoint_of_another_task_is_refused(tmp_path):
    import yaml

    from osrl_unlearn.agents.checkpoint import CheckpointError

    run = save_run(make_agent("cpq"), tmp_path / "run", {**TINY_CONFIG, "prefix": "CPQ"})
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["task"] = "OfflinePointCircle1Gymnasium-v0"  # 28 observations instead of 8
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(
        CheckpointError,
        match="does not fit its config.yaml: observation/action widths differ.*OfflinePointCircle1",
    ):
        load_agent(run)


def test_pickled_checkpoint_is_refused(tmp_path):
    from osrl_unlearn.agents.checkpoint import CheckpointError

    run = save_run(make_agent("cpq"), tmp_path / "run", {**TINY_CONFIG, "prefix": "CPQ"})
    torch.save(
        {"model_state": make_agent("cpq").state_dict(), "extra": object()},
        run / "checkpoint" / "model.pt",
    )
    with pytest.raises(CheckpointError, match="carries code .*; refused.$"):
        load_agent(run)
