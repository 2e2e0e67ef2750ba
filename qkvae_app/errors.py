"""A person's mistake, told to them in the page and logged as one line (never a traceback)."""

import logging

import gradio as gr

log = logging.getLogger("qkvae_app")


def refuse(title: str, message: str) -> gr.Error:
    """The ``gr.Error`` to raise for bad input: shown under ``title``, logged as one line."""
    log.warning("%s: %s", title, message)
    return gr.Error(message, title=title, print_exception=False)
