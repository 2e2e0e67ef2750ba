"""Typed outputs of a tab's events: a frozen dataclass per tab, one field per output component.

A tab's view class subclasses ``Outputs``; ``components(holder)`` lists the holder's components
named like the fields, in field order (a field declared with ``per_item()`` feeds one component
per item of its list), and
``handler(fn, count)`` turns a function returning a view into the list Gradio expects, so an
event's return value and its outputs cannot drift apart. A field left at ``SKIP`` leaves its
component as it is.
"""

import functools
from dataclasses import dataclass, field, fields

import gradio as gr


def skip():
    """A field default: leave the component unchanged."""
    return field(default_factory=gr.skip)


def per_item():
    """A list field whose items feed one component each (the holder's attribute is a list too)."""
    return field(metadata={"per_item": True})


def _spread(f, value) -> list:
    return list(value) if f.metadata.get("per_item") else [value]


@dataclass(frozen=True)
class Outputs:
    def values(self) -> list:
        """The field values in order, ``per_item`` fields spread out: what the event handler returns."""
        return [v for f in fields(self) for v in _spread(f, getattr(self, f.name))]

    @classmethod
    def components(cls, holder) -> list:
        """The components named by the fields, read from ``holder``'s attributes, in field order."""
        return [c for f in fields(cls) for c in _spread(f, getattr(holder, f.name))]

    @classmethod
    def handler(cls, fn, count: int):
        """``fn`` returning a view (or None, which clears all ``count`` outputs) as an event handler."""
        @functools.wraps(fn)  # Gradio reads the signature (gr.Progress, gr.SelectData) and docstring through it
        def wrapped(*args, **kwargs):
            view = fn(*args, **kwargs)
            return [None] * count if view is None else view.values()
        return wrapped
