"""What the benchmarks' command lines share: a parser named after the module, with ``--json``, and
a ``main`` that runs, prints the Markdown report and writes the raw results.

    def setup_args(argv=None) -> argparse.Namespace:
        p = parser("bench.evaluate", __doc__)
        p.add_argument("--images", type=int, default=128)
        return p.parse_args(argv)

    def main(argv=None) -> None:
        cli.main(setup_args, run, markdown, argv)
"""

import argparse
import json
from collections.abc import Callable


def parser(module: str, doc: str) -> argparse.ArgumentParser:
    """The parser of ``python -m module``, described by the first line of ``doc``, with ``--json``."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n")[0])
    p.add_argument("--json", help="also write the raw results here")
    return p


def write_json(path: str | None, results) -> None:
    """``results`` as indented JSON at ``path``; nothing without a path."""
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=2)


def main(setup_args: Callable[[list[str] | None], argparse.Namespace], run: Callable[[argparse.Namespace], object],
         markdown: Callable[[object], str], argv=None) -> None:
    """Parse ``argv``, run, print the report and write the raw results to ``--json`` (when given)."""
    args = setup_args(argv)
    result = run(args)
    print(markdown(result))
    write_json(args.json, result)
