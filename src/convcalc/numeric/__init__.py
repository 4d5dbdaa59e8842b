"""Real forward passes in NumPy: `--verify` and the gradient tools build on this package.

Layering: `convcalc.layers` says what a layer computes; this package says how to run it.
`windows` (padding, strided windows, im2col, col2im) <- family modules (`conv`, `pool`,
`norm`, `activation`, `reshape`, each exporting `KERNELS`) <- `kernels` (the table,
`forward_layer`, `layer_params`) <- `runner` (walks a `Network`: `run`, `trace`, `verify`).
`result` holds the verification records and imports no NumPy, so this `__init__` imports
nothing: NumPy is loaded only when a numeric module is imported.
"""
