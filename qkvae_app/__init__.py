"""Helpers behind the Gradio app (``app.py``): settings, token editing, dataset evaluation, text panels.

Everything here is plain Python over numpy/torch and the ``qkvae`` / ``analysis`` packages, so it
is testable without a server; ``app.py`` only lays out components and wires events to these.
"""
