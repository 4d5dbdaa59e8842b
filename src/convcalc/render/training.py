"""Training memory (`--training`) as JSON fields, table cells and summary lines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convcalc.render.data import human_bytes
from convcalc.training import OPTIMIZER_STATES, TrainingMemory

if TYPE_CHECKING:
    from convcalc.render.table import Extra


def training_dict(memory: TrainingMemory, buffers: int) -> dict[str, Any]:
    """The `training` object of the JSON output (bytes for the whole batch)."""
    return {
        "optimizer": memory.optimizer,
        "optimizer_states_per_param": OPTIMIZER_STATES[memory.optimizer],
        "saved_bytes": memory.saved_bytes,
        "weight_bytes": memory.weight_bytes,
        "buffers": buffers,
        "gradient_bytes": memory.gradient_bytes,
        "optimizer_bytes": memory.optimizer_bytes,
        "total_bytes": memory.total_bytes,
        "saved_bytes_per_layer": list(memory.per_layer),
        "amp": memory.amp,
        "scaler_bytes": memory.scaler_bytes,
    }


def saved_cells(memory: TrainingMemory) -> list[str]:
    return [human_bytes(b) if b else "-" for b in memory.per_layer]


def saved_extra(memory: TrainingMemory) -> Extra:
    """The "Kept for backward" column: a layer's bytes, or the sum over a group's layers."""
    from convcalc.render.fit import abbreviate_bytes
    from convcalc.render.table import Extra

    per_layer = memory.per_layer

    def cell(entry: Any) -> str:
        kept = sum(per_layer[entry.start:entry.stop])
        return human_bytes(kept) if kept else "-"

    def short(entry: Any) -> str:
        kept = sum(per_layer[entry.start:entry.stop])
        return abbreviate_bytes(kept) if kept else "-"

    return Extra("Kept for backward", cell, right=True, short_header="Kept", short_cell=short)


def summary_lines(memory: TrainingMemory, batch_size: int) -> list[str]:
    amp = f", mixed precision {memory.amp}" if memory.amp else ""
    scaler = f" + GradScaler {human_bytes(memory.scaler_bytes)}" if memory.amp else ""
    lines = [
        f"Training (batch {batch_size}, optimizer {memory.optimizer}{amp}): "
        f"{human_bytes(memory.total_bytes)} at least",
        f"  kept for backward {human_bytes(memory.saved_bytes)}"
        f" + weights {human_bytes(memory.weight_bytes)}"
        f" + gradients {human_bytes(memory.gradient_bytes)}"
        f" + optimizer state {human_bytes(memory.optimizer_bytes)}{scaler}",
    ]
    if memory.amp:
        lines.append(f"  (weights, gradients and optimizer state in float32; activations in {memory.amp} where"
                     " autocast casts them, with the casts of conv and linear weights)")
    lines.append("  (not counted: activation gradients during backward, workspaces, allocator overhead;"
                 " see docs/check.md)")
    return lines
