"""The registry of layer types: every name a spec may use, mapped to its one class.

Adding a layer type: write its class (arguments + `infer`) in the module of its family and
list it in that module's LAYER_TYPES. Merges (`add`, `concat`) are separate: branches
create them.
"""

from __future__ import annotations

from convcalc.layers import conv, elementwise, norm, pool, reshape
from convcalc.layers.base import Args, Inference, LayerType, Note, Registry, Shape
from convcalc.layers.merge import MERGE_TYPES, MergeType

REGISTRY = Registry()
for _module in (conv, pool, norm, elementwise, reshape):
    REGISTRY.add(*_module.LAYER_TYPES)

__all__ = ["MERGE_TYPES", "REGISTRY", "Args", "Inference", "LayerType", "MergeType", "Note", "Shape"]
