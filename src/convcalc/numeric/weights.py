"""Real weights for the NumPy forward pass: a PyTorch state_dict (.pt/.pth) or a .npz.

Keys are state_dict keys, `<path>.<name>` (`layer1.0.conv1.weight`), which are convcalc's
paths when the module was built by `convcalc.torch.build` or exported by `convcalc
export` (or written with the same names, as torchvision's models are). `load_weights`
turns a file into the runner's table, path -> {name: array}, and checks it against the
network the way `load_state_dict(strict=True)` does: every parameter and buffer the layers
need, of the right shape, and nothing else (PyTorch's `num_batches_tracked` counters are
ignored: they do not change an eval-mode forward).

Imports `errors`, `network`, `analysis` and `numeric` only (and torch, lazily, for .pt).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from convcalc.analysis import Report
from convcalc.errors import SpecError
from convcalc.network import Network
from convcalc.numeric.kernels import param_specs
from convcalc.numeric.runner import VERIFY_DTYPES

IGNORED = ("num_batches_tracked",)


def read_arrays(path: str) -> dict[str, np.ndarray]:
    """The arrays of a .npz, or the tensors of a PyTorch state_dict file, by key."""
    file = Path(path)
    if not file.is_file():
        raise SpecError(f"--weights {path}: no such file")
    if file.suffix in (".pt", ".pth"):
        return _state_dict(path)
    if file.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: np.asarray(data[key]) for key in data.files}
        except (OSError, ValueError) as err:
            raise SpecError(f"--weights {path}: not a NumPy .npz file ({err})") from None
    raise SpecError(f"--weights {path}: give a PyTorch state_dict (.pt or .pth) or a NumPy .npz")


def _state_dict(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise SpecError(f"--weights {path}: reading a .pt file needs PyTorch (pip install 'convcalc[torch]');"
                        " or save the weights with numpy.savez") from None
    try:
        loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused or a corrupt file: say which and why
        raise SpecError(f"--weights {path}: cannot read it as a state_dict ({type(err).__name__}: {err});"
                        " save model.state_dict(), not the model") from None
    if hasattr(loaded, "state_dict") and not isinstance(loaded, dict):
        loaded = loaded.state_dict()
    if not isinstance(loaded, dict) or not all(hasattr(v, "detach") for v in loaded.values()):
        raise SpecError(f"--weights {path}: expected a state_dict (names to tensors)")
    return {key: value.detach().cpu().numpy() for key, value in loaded.items()}


def load_weights(path: str, network: Network, report: Report, dtype: str = "float32"
                 ) -> dict[str, dict[str, np.ndarray]]:
    """The runner's parameter table from a weights file; a SpecError names every key that is
    missing, unexpected or of the wrong shape."""
    arrays = {k: v for k, v in read_arrays(path).items() if k.rpartition(".")[2] not in IGNORED}
    cast = VERIFY_DTYPES[dtype]
    table: dict[str, dict[str, np.ndarray]] = {}
    missing, wrong = [], []
    for node, row in zip(network.graph.nodes, report.rows):
        specs = param_specs(node.type, node.args, row.input_shapes[0]) if node.type.arity == 1 else {}
        if not specs:
            continue
        table[node.path] = {}
        for name, spec in specs.items():
            bare = node.type.keyed_by_path  # ConvNeXt's layer_scale: at the layer's path, [C, 1, 1]
            key = node.path if bare else f"{node.path}.{name}"
            if key not in arrays:
                missing.append(key)
            elif tuple(arrays[key].shape) != tuple(spec.shape) and not (
                    bare and tuple(d for d in arrays[key].shape if d != 1) == tuple(d for d in spec.shape if d != 1)):
                wrong.append(f"{key} is {list(arrays.pop(key).shape)}, the layer needs {list(spec.shape)}")
            else:
                table[node.path][name] = np.ascontiguousarray(arrays.pop(key).reshape(spec.shape), dtype=cast)
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}")
    if wrong:
        problems.append(f"wrong shape: {'; '.join(wrong[:3])}{'; ...' if len(wrong) > 3 else ''}")
    if arrays:
        extra = sorted(arrays)
        problems.append(f"not in the network: {', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''}")
    if problems:
        raise SpecError(f"--weights {path} does not fit {network.name}: " + "; ".join(problems))
    return table
