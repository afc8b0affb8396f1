"""Safety-Gymnasium resets without decoding its star-field skybox.

Safety-Gymnasium rebuilds its MuJoCo model from XML at every reset, and the XML names a skybox of
six PNGs (24 MB) that MuJoCo decodes each time: 1.6 s of a PointCircle1 reset on this project's
machine, against 0.7 ms a step, so evaluating 50 episodes spent most of its time decoding
pictures. The skybox is only drawn when rendering; the physics and the observations never read
it. :class:`LightSkybox` (what :func:`osrl_unlearn.tasks.make_env` wraps every non-rendering
Safety-Gymnasium env in) swaps it for a one-colour builtin texture while its env resets: the same
model otherwise (``tests/test_light_skybox.py``: identical episodes), a reset ~60× faster.
"""

from __future__ import annotations

import contextlib
import re
import types
from collections.abc import Iterator

import gymnasium as gym

SKYBOX = re.compile(r'<texture type="skybox"[^>]*>(</texture>)?')
"""The skybox texture element as ``xmltodict.unparse`` writes safety-gymnasium's."""
LIGHT_SKYBOX = '<texture type="skybox" builtin="flat" rgb1="0 0 0" width="8" height="8"></texture>'

_light = 0
"""How many :func:`light_skybox` blocks are open (the swap applies inside one only)."""


@contextlib.contextmanager
def light_skybox() -> Iterator[None]:
    """Inside this block, safety-gymnasium compiles its worlds with :data:`LIGHT_SKYBOX`."""
    global _light
    _install()
    _light += 1
    try:
        yield
    finally:
        _light -= 1


def without_skybox(xml: str) -> str:
    """``xml`` with its skybox texture replaced by :data:`LIGHT_SKYBOX`."""
    return SKYBOX.sub(LIGHT_SKYBOX, xml)


def _install() -> None:
    """Points ``safety_gymnasium.world``'s ``mujoco`` at a stand-in whose
    ``MjModel.from_xml_string`` drops the skybox inside :func:`light_skybox` (idempotent; outside
    such a block, and for every other name, it is mujoco itself)."""
    import mujoco
    import safety_gymnasium.world as world

    if isinstance(world.mujoco, _Mujoco):
        return

    def from_xml_string(xml: str, *args, **kwargs):
        return mujoco.MjModel.from_xml_string(without_skybox(xml) if _light else xml, *args,
                                              **kwargs)  # fmt: skip

    world.mujoco = _Mujoco(mujoco, types.SimpleNamespace(from_xml_string=from_xml_string))


class _Mujoco(types.ModuleType):
    """The mujoco module with ``MjModel`` replaced (what ``safety_gymnasium.world`` calls)."""

    def __init__(self, module: types.ModuleType, model: types.SimpleNamespace) -> None:
        super().__init__(module.__name__)
        self._module, self.MjModel = module, model

    def __getattr__(self, name: str):
        return getattr(self._module, name)


class LightSkybox(gym.Wrapper):
    """Resets its Safety-Gymnasium env inside :func:`light_skybox` (for envs that never render:
    ``make_env`` does not wrap an env made with a ``render_mode``)."""

    def reset(self, *, seed=None, options=None):
        with light_skybox():
            return self.env.reset(seed=seed, options=options)
