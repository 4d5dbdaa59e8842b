"""The registry of layer types: every name a spec may use, mapped to its one class.

Adding a layer type: write its class (arguments + `infer`) in the module of its family and
list it in that module's LAYER_TYPES. Merges (`add`, `concat`) are layer types too, with
several inputs; `residual` and `parallel` create them.
"""

from __future__ import annotations

from convcalc.layers import blocks, conv, elementwise, merge, norm, pool, reshape
from convcalc.layers.base import Args, Code, Hole, Inference, LayerType, Note, Registry, Shape, TorchCall
from convcalc.layers.merge import InputMismatch, Merge

REGISTRY = Registry()
for _module in (conv, pool, norm, elementwise, reshape, blocks, merge):
    REGISTRY.add(*_module.LAYER_TYPES)

# The layer types that take several inputs, by name.
MERGE_TYPES: dict[str, LayerType] = {t.name: t for t in merge.LAYER_TYPES}
MergeType = Merge

__all__ = ["MERGE_TYPES", "REGISTRY", "Args", "Code", "Hole", "Inference", "InputMismatch", "LayerType", "Merge",
           "MergeType", "Note", "Shape", "TorchCall"]
