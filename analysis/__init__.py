"""Research tools for QKVAE-1m: metrics, codebook statistics, OOD signals, rate, stability, plots.

Pure functions over numpy arrays and the model; the CLIs ``python -m analysis.reference``
and ``python -m analysis.evaluate`` and the app only wire them together.
"""
