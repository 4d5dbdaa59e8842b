"""A spec as a PyTorch module: `build(spec, **set)` (an optional feature: needs torch).

    from convcalc.torch import build
    model = build("examples/resnet50.yaml")          # a torch.nn.Module, random weights
    model = build("net.yaml", width=64)              # with vars overridden, as --set does

Module paths are convcalc's (`layer3.1.conv2.weight`), so a state_dict saved from a model
with the same names loads as it is. Without torch, importing this package raises an
ImportError that says how to install it.

Imports `torch.build` and `torch.modules` only.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401  (the check that PyTorch is there)
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "convcalc.torch needs PyTorch, which is not installed: pip install 'convcalc[torch]'"
        " (or pip install torch)"
    ) from err

from convcalc.torch.build import build, load_spec, modules_of

__all__ = ["build", "load_spec", "modules_of"]
