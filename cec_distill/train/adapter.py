"""The LoRA adapter's target modules: the configured names (or the family's), each checked.

peft matches a name in ``target_modules`` against every module whose qualified name equals it
or ends in ``.NAME``, and raises only when *no* name matches anything: a list with one right
name and one wrong one (a Llama name in a Phi preset, a typo) trains silently without the
wrong one. :func:`lora_targets` refuses that before training starts.

Examples:
    >>> import torch
    >>> class Block(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.q_proj, self.dense = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> lora_targets(Block(), ["q_proj", "dense"])
    ['q_proj', 'dense']
    >>> lora_targets(Block(), ["q_proj", "o_proj"])
    Traceback (most recent call last):
    ...
    cec_distill.config.mapping.ConfigError: lora.target_modules: 'o_proj' matches no module of Block (model_type unknown); its linear layers are named: dense, q_proj
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cec_distill.config import LORA_TARGETS, ConfigError

__all__ = ["lora_targets", "linear_layer_names"]


def linear_layer_names(model: Any) -> list[str]:
    """The distinct last names of ``model``'s linear layers (4-bit ones included), sorted."""
    import torch

    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, mod in model.named_modules()
            if name and isinstance(mod, torch.nn.Linear)
        }
    )


def lora_targets(model: Any, configured: Sequence[str] | None) -> list[str]:
    """The LoRA target module names for ``model``, every one of them present in it.

    Args:
        model: The loaded base model (before peft wraps it).
        configured: ``lora.target_modules``; ``None`` or empty picks :data:`LORA_TARGETS` for
            the model family (``config.model_type``).

    Raises:
        ConfigError: No default for the family and none configured, or a name that matches no
            module of the model (peft's rule: the qualified name is the target or ends in
            ``.target``), naming the names the model's linear layers have.
    """
    config = getattr(model, "config", None)
    family = getattr(config, "model_type", None) or "unknown"
    targets = list(configured) if configured else list(LORA_TARGETS.get(family, []))
    if not targets:
        raise ConfigError(
            f"no default LoRA target modules for model family {family!r}; set "
            f"lora.target_modules (its linear layers are named: "
            f"{', '.join(linear_layer_names(model))})"
        )
    names = [name for name, _ in model.named_modules() if name]
    missing = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if missing:
        which = ", ".join(repr(t) for t in missing)
        verb = "matches" if len(missing) == 1 else "match"
        raise ConfigError(
            f"lora.target_modules: {which} {verb} no module of {type(model).__name__} "
            f"(model_type {family}); its linear layers are named: "
            f"{', '.join(linear_layer_names(model))}"
        )
    return targets
