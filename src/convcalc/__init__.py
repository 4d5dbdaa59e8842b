"""convcalc: shapes, receptive fields, parameters and costs of convolutional networks."""

__version__ = "0.1.0"
