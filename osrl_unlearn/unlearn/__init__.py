"""The unlearning loop, its settings and the actor-critic steps."""

from osrl_unlearn.unlearn.config import SafeRuleConfig
from osrl_unlearn.unlearn.loop import UnlearningError, UnlearningHistory, UnlearningMixin

__all__ = ["SafeRuleConfig", "UnlearningError", "UnlearningHistory", "UnlearningMixin"]
