"""``python -m qkvae.tokenize`` with the ``ood_score`` column: the same CLI, options and shards,
plus, with ``--with-metrics``, each image's OOD score from the reference code distribution.

    python -m analysis.tokenize INPUT --out DIR --with-metrics [...]    # also: qkvae-tokenize

The core cannot import ``analysis`` (the layers only look down), so the score reaches it as an
``OodScorerFactory`` passed in from here.
"""

import sys

import numpy as np

from analysis.reference import ReferenceFileError, load_reference
from qkvae import tokenize


def ood_scorer(weights_sha256: str):
    """(rgb uint8 (B, 96, 96, 3), ids (B, 2304)) -> each image's OOD score (``analysis.ood``,
    float32 (B,)) under the shipped reference; None, with a note on stderr, when there is none
    for these weights."""
    try:
        reference = load_reference(weights_sha256=weights_sha256)
    except ReferenceFileError as e:
        print(f"note: no ood_score column ({e})", file=sys.stderr)
        return None
    return lambda rgb, ids: np.array([reference.score(image, i).score for image, i in zip(rgb, ids, strict=True)],
                                     np.float32)


def main(argv=None) -> int:
    return tokenize.main(argv, ood_scorer)


if __name__ == "__main__":
    sys.exit(main())
