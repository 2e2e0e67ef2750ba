"""What every command line of the project shares: its common options and its one way to fail.

    p = argparse.ArgumentParser(prog="python -m analysis.evaluate", parents=[common_options()])
    ...
    return run_cli(lambda: run(args), ReferenceFileError)

``common_options`` is the parent parser of ``--weights``, ``--device``, ``--batch-size``,
``--data`` and ``--split`` (each CLI takes those it needs); ``--data`` has no default, since an
installed command has no data folder beside it. ``run_cli`` turns bad input (``INPUT_ERRORS``
and the CLI's own) into one line on stderr and exit status 2.
"""

import argparse
import sys
from collections.abc import Callable

from qkvae import INPUT_ERRORS
from qkvae.pipeline import BATCH_SIZE

DATA_HELP = ("image source: folder, .txt list, STL-10 *_X.bin or stl10_binary/, Parquet, or a Hub dataset "
             "hf://datasets/OWNER/NAME[@revision]")


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def common_options(data: bool = True, split: bool = True, batch_size: int | None = BATCH_SIZE,
                   weights: bool = True, data_help: str = DATA_HELP) -> argparse.ArgumentParser:
    """The parent parser of the shared options; leave out those a CLI does not take."""
    p = argparse.ArgumentParser(add_help=False)
    if data:
        p.add_argument("--data", required=True, help=data_help)
    if split:
        p.add_argument("--split", default=None, help="the split of a Parquet or Hub dataset (e.g. test)")
    if weights:
        p.add_argument("--weights", default=None,
                       help="weights file or folder, or hf://OWNER/NAME[@revision] (default: the shipped weights)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    if batch_size is not None:
        p.add_argument("--batch-size", type=positive, default=batch_size, help="images per model call")
    return p


def run_cli(fn: Callable[[], int | None], *errors: type[Exception]) -> int:
    """``fn()``'s exit status (0 for None); bad input, ``INPUT_ERRORS`` or ``errors``, is reported
    as one line, ``error: ...``, on stderr, with status 2."""
    try:
        return fn() or 0
    except (*INPUT_ERRORS, *errors) as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
