"""Every repair method through the shared harness, and what makes each one what it is."""

import copy

import numpy as np
import pytest
import torch

from osrl_unlearn import SafeRuleConfig
from osrl_unlearn.agents.checkpoint import build_agent
from osrl_unlearn.errors import ConfigError
from osrl_unlearn.training import make_trainer
from osrl_unlearn.unlearn import UnlearningError
from osrl_unlearn.unlearn.config import FinetuneConfig, RelabelConfig, TrajDeleterConfig
from osrl_unlearn.unlearn.methods import METHODS, ablation_config, method_config
from tests.agents.conftest import TINY_CONFIG, make_agent, samplers
from tests.agents.test_unlearning import critic_modules, parameters

FAST = SafeRuleConfig(steps=6, actor_lr=1e-3, critic_lr=1e-3)


def module_params(agent, module):
    prefix = next(n for n, m in agent.named_children() if m is module)
    state = agent.state_dict()
    return {k: state[k].clone() for k in state if k.startswith(prefix + ".")}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_records_time_and_changes_the_actor(agent_name, method, split_data):
    agent = make_agent(agent_name)
    before = parameters(agent)
    keep, forget = samplers(agent_name, split_data)
    config = {"relabel": RelabelConfig(steps=6), "trajdeleter": TrajDeleterConfig(steps=6),
              "trajdeleter-cost": TrajDeleterConfig(steps=6), "finetune": FinetuneConfig(steps=6),
              "retrain": FinetuneConfig(steps=6)}.get(method, FAST)  # fmt: skip
    history = agent.unlearn(keep, forget, method=method, config=config, show_progress=False)
    assert history.method == method
    assert history.steps == 6 and len(history.metrics) == 6
    if method in ("trajdeleter", "trajdeleter-cost"):  # keep and forget blocks take turns
        assert keep.batches_drawn + forget.batches_drawn == 6
    else:
        assert keep.batches_drawn == 6
    assert history.wall_seconds > 0 and history.cpu_seconds > 0
    assert all(np.isfinite(v) for m in history.metrics for v in m.values())
    after = agent.state_dict()
    assert after.keys() == before.keys()  # nothing of the method leaks into the checkpoint
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("actor."))


def test_reward_only_leaves_the_cost_critic_alone(split_data):
    agent = make_agent("bcql")
    before = module_params(agent, agent.cost_critic)
    keep, forget = samplers("bcql", split_data)
    history = agent.unlearn(keep, forget, method="reward-only", config=FAST, show_progress=False)
    assert same(before, module_params(agent, agent.cost_critic))
    assert "unlearn/cost_critic_keep_loss" not in history.last()


@pytest.mark.parametrize("name", ["bcql", "bearl", "cpq"])
def test_trajdeleter_freezes_critics_while_forgetting_then_converges_on_keep(name, split_data):
    keep, forget = samplers(name, split_data)
    agent = make_agent(name)
    before = [parameters(m) for m in critic_modules(agent, name)]
    forgetting_only = SafeRuleConfig(steps=4, actor_lr=1e-3, critic_unlearning=False)
    agent.unlearn(
        keep, forget, method="trajdeleter-adv", config=forgetting_only, show_progress=False
    )
    assert all(
        same(b, parameters(m)) for b, m in zip(before, critic_modules(agent, name), strict=False)
    )

    agent = make_agent(name)
    keep, forget = samplers(name, split_data)
    config = method_config(
        "trajdeleter-adv-cost", None
    )  # its defaults: fixed beta 1, half converging
    history = agent.unlearn(keep, forget, method="trajdeleter-adv-cost", config=config, steps=6,
                            show_progress=False)  # fmt: skip
    assert history.series("unlearn/beta_f") == [1.0] * 6
    assert all("unlearn/critic_keep_loss" in m for m in history.metrics[3:])
    assert not any("unlearn/critic_keep_loss" in m for m in history.metrics[:3])
    assert not any("unlearn/critic_forget_loss" in m for m in history.metrics)
    assert not all(
        same(b, parameters(m)) for b, m in zip(before, critic_modules(agent, name), strict=False)
    )


@pytest.mark.parametrize("trainer", ["fast", "osrl"])
def test_finetune_is_training_on_keep_data(agent_name, split_data, trainer):
    agent = make_agent(agent_name)
    reference = copy.deepcopy(agent)
    keep, _ = samplers(agent_name, split_data)
    torch.manual_seed(3)
    config = FinetuneConfig(trainer=trainer)
    agent.unlearn(keep, None, method="finetune", config=config, steps=4, show_progress=False)

    keep_again, _ = samplers(agent_name, split_data)
    torch.manual_seed(3)
    step = make_trainer(trainer, agent_name, reference)
    reference.train()
    for batch in keep_again.batches(4):
        step.train_one_step(*batch)
    assert same(parameters(agent), parameters(reference))


def test_retrain_equals_a_fresh_agent_trained_on_keep_data(agent_name, split_data):
    agent = make_agent(agent_name, seed=1)
    keep, _ = samplers(agent_name, split_data)
    torch.manual_seed(5)
    history = agent.unlearn(keep, None, method="retrain", steps=4, show_progress=False)
    assert history.steps == 4

    keep_again, _ = samplers(agent_name, split_data)
    torch.manual_seed(5)
    fresh = build_agent(agent_name, TINY_CONFIG)
    step = make_trainer("fast", agent_name, fresh)
    fresh.train()
    for batch in keep_again.batches(4):
        step.train_one_step(*batch)
    assert same(parameters(agent), parameters(fresh))
    # and the state OSRL keeps outside the state dict, so that training on continues alike
    if hasattr(fresh, "controller"):
        assert vars(agent.controller) == vars(fresh.controller)
    for name in ("n_train_steps", "log_alpha", "lmbda", "tau"):
        if hasattr(fresh, name):
            assert torch.equal(torch.as_tensor(getattr(agent, name)),
                               torch.as_tensor(getattr(fresh, name))), name  # fmt: skip


def test_unknown_method_and_missing_forget_loader_are_refused(split_data):
    agent = make_agent("cpq")
    keep, forget = samplers("cpq", split_data)
    with pytest.raises(ConfigError, match="unknown method 'retrian'"):
        agent.unlearn(keep, forget, method="retrian", show_progress=False)
    with pytest.raises(UnlearningError, match="needs a forget loader"):
        agent.unlearn(keep, None, steps=2, show_progress=False)
    with pytest.raises(ConfigError, match="unknown ablation"):
        ablation_config("no-beta")


def test_a_users_config_keeps_its_settings_and_gets_the_methods_definition():
    mine = SafeRuleConfig(actor_lr=3e-4, critic_unlearning=True)
    config = method_config("reward-only", mine)
    assert config.use_cost is False and config.actor_lr == 3e-4
    traj = method_config("trajdeleter-adv", mine)
    assert traj.forget_objective == "trajdeleter" and traj.critic_unlearning is True
    assert method_config("trajdeleter-adv").critic_unlearning is False  # its own defaults
    assert ablation_config("fixed-beta").adaptive_beta is False
    assert ablation_config("q-ref-0").q_ref_percentile == 0.0
    both = ablation_config("actor-reset+q-ref-0")
    assert both.actor_reset and both.actor_lr == 1e-3 and both.q_ref_percentile == 0.0
    with pytest.raises(ConfigError, match="unknown ablation 'q-ref-7'"):
        ablation_config("actor-reset+q-ref-7")


def test_lagrangian_keep_objective_raises_its_multiplier_while_the_constraint_is_violated(
    split_data,
):
    agent = make_agent("bcql")
    keep, forget = samplers("bcql", split_data)
    config = SafeRuleConfig(steps=5, keep_objective="lagrangian", multiplier_rate=1.0)
    history = agent.unlearn(keep, forget, config=config, show_progress=False)
    lambdas = history.series("unlearn/multiplier")
    keep_qc = history.series("unlearn/keep_qc")
    for before, after, qc in zip(lambdas, lambdas[1:], keep_qc[1:], strict=False):
        assert after == pytest.approx(max(0.0, before + (qc - history.kappa)))
    with pytest.raises(ConfigError, match="keep_objective"):
        SafeRuleConfig(keep_objective="soft")


@pytest.mark.parametrize("name", ["bcql", "bearl"])
def test_behaviour_unlearning_trains_the_vae_on_keep_data_only_when_asked(name, split_data):
    keep, forget = samplers(name, split_data)
    frozen_run = make_agent(name)
    before = module_params(frozen_run, frozen_run.vae)
    frozen_run.unlearn(keep, forget, config=FAST, show_progress=False)
    assert same(before, module_params(frozen_run, frozen_run.vae))
    agent = make_agent(name)
    keep, forget = samplers(name, split_data)
    config = SafeRuleConfig(steps=4, behaviour_unlearning=True, critic_lr=1e-3)
    history = agent.unlearn(keep, forget, config=config, show_progress=False)
    assert not same(before, module_params(agent, agent.vae))
    assert all(np.isfinite(m["unlearn/vae_loss"]) for m in history.metrics)


@pytest.mark.parametrize("name", ["bcql", "coptidice"])
def test_actor_reset_starts_the_actor_from_fresh_weights(name, split_data):
    agent = make_agent(name)
    fresh = copy.deepcopy(agent.actor)
    torch.manual_seed(3)
    for module in fresh.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    keep, forget = samplers(name, split_data)
    config = SafeRuleConfig(steps=1, actor_reset=True, actor_lr=0.0)  # lr 0: the reset alone
    torch.manual_seed(3)
    agent.unlearn(keep, forget, config=config, show_progress=False)
    assert same(fresh.state_dict(), agent.actor.state_dict())
    if hasattr(agent, "actor_old"):  # the target copy too (one soft update of equal weights)
        target = agent.actor_old.state_dict()
        assert all(torch.allclose(v, target[k]) for k, v in agent.actor.state_dict().items())


def test_short_form_splits_a_poisoned_dataset_by_its_mask(split_data):
    """agent.unlearn(poisoned) draws exactly what the two samplers built by hand would."""
    from osrl_unlearn.data import OfflineDataset
    from tests.agents.conftest import poisoned_arrays

    poisoned = OfflineDataset.from_arrays(poisoned_arrays())
    short, by_hand = make_agent("cpq"), make_agent("cpq")
    torch.manual_seed(2)
    short.unlearn(poisoned, steps=3, batch_size=32, seed=4, config=FAST, show_progress=False)
    keep, forget = samplers("cpq", poisoned.split(), batch_size=32, seed=4)
    torch.manual_seed(2)
    by_hand.unlearn(keep, forget, steps=3, config=FAST, show_progress=False)
    assert same(parameters(short), parameters(by_hand))
    clean = OfflineDataset.from_arrays({k: v for k, v in poisoned_arrays().items()
                                        if k != "poison_mask"})  # fmt: skip
    with pytest.raises(UnlearningError, match="no poisoned rows"):
        make_agent("cpq").unlearn(clean, steps=2, show_progress=False)
    with pytest.raises(UnlearningError, match="not a dataset and a forget loader"):
        make_agent("cpq").unlearn(poisoned, forget, steps=2, show_progress=False)


@pytest.mark.parametrize(
    ("config", "method"),
    [(None, "relabel"), (SafeRuleConfig(steps=2), "safe-rule"), (FinetuneConfig(steps=2), "finetune"),
     (RelabelConfig(steps=2), "relabel"), (TrajDeleterConfig(steps=2), "trajdeleter"),
     (TrajDeleterConfig(steps=2, cost_aware=True), "trajdeleter-cost")],
)  # fmt: skip
def test_the_method_follows_from_the_configs_type(config, method, split_data):
    agent = make_agent("bcql")
    keep, forget = samplers("bcql", split_data)
    history = agent.unlearn(keep, forget, config=config, steps=2, show_progress=False)
    assert history.method == method and history.steps == 2
