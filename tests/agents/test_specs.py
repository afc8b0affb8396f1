"""Each agent spec agrees with OSRL and with the pieces it names."""

import inspect

import pytest

from osrl_unlearn.agent_specs import SPECS, agent_spec
from osrl_unlearn.data import layout_for
from osrl_unlearn.osrl_configs import OSRL_TRAIN_DEFAULTS
from osrl_unlearn.stack import import_osrl_algorithms


@pytest.mark.parametrize("key", list(SPECS))
def test_spec_names_pieces_that_exist_and_agree_with_osrl(key):
    spec = SPECS[key]
    osrl = import_osrl_algorithms()
    subclass = spec.agent_class()
    assert subclass.osrl_key == key and issubclass(subclass, getattr(osrl, spec.osrl_name))
    trainer = getattr(osrl, f"{spec.osrl_name}Trainer")
    parameters = inspect.signature(trainer.__init__).parameters
    for name, default in spec.trainer_learning_rates.items():  # OSRL's trainer defaults
        assert parameters[name].default == default, (key, name)
    constructor = inspect.signature(getattr(osrl, spec.osrl_name).__init__).parameters
    assert all(k in constructor for k in spec.constructor_keys)
    config = OSRL_TRAIN_DEFAULTS[key]
    assert config["prefix"] == spec.osrl_name
    assert all(k in config for k in (*spec.constructor_keys, *spec.config_learning_rates))
    assert spec.step_class().__name__.endswith("Step")
    assert layout_for(key) == spec.layout


def test_unknown_agent_names_the_known_ones():
    with pytest.raises(KeyError, match="bcql, bearl, cpq, coptidice"):
        agent_spec("sac")
    assert agent_spec("BCQL") is SPECS["bcql"]


@pytest.mark.parametrize("key", list(SPECS))
def test_evaluation_acts_by_the_specs_rule_for_our_class_and_osrls_own(key):
    import copy

    import torch

    from osrl_unlearn.agent_specs import spec_of
    from osrl_unlearn.evaluation import batched_policy
    from tests.agents.conftest import make_agent

    ours = make_agent(key).eval()
    theirs = copy.deepcopy(ours)
    theirs.__class__ = getattr(import_osrl_algorithms(), SPECS[key].osrl_name)  # OSRL's own
    assert spec_of(ours) is spec_of(theirs) is SPECS[key]
    obs = torch.randn(5, 8)
    with torch.no_grad():
        torch.manual_seed(1)
        expected = {  # OSRL's eval scripts' action rules, written out per agent
            "bcql": lambda: ours.actor(obs, ours.vae.decode(obs)),
            "bearl": lambda: ours._actor_forward(obs, True, True)[0],
            "cpq": lambda: ours._actor_forward(obs, True, True)[0],
            "coptidice": lambda: ours.actor(obs, True, True)[0],
        }[key]()
        for agent in (ours, theirs):
            torch.manual_seed(1)
            assert torch.equal(batched_policy(agent)(obs), expected)


def test_spec_of_refuses_what_is_not_an_osrl_agent():
    from osrl_unlearn.agent_specs import spec_of

    with pytest.raises(TypeError, match="not an OSRL agent"):
        spec_of(object())
