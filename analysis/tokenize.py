"""``python -m qkvae.tokenize`` with the ``ood_score`` column: the same CLI, options and shards,
plus, with ``--with-metrics``, each image's OOD score from the reference code distribution.

    python -m analysis.tokenize INPUT --out DIR --with-metrics [...]    # also: qkvae-tokenize

The core cannot import ``analysis`` (the layers only look down), so the score reaches it as an
``OodScorerFactory`` passed in from here.
"""

import sys

import numpy as np

from analysis.reference import OOD_SCORE, ReferenceFileError, load_reference, ood_score, token_probabilities
from qkvae import tokenize


def ood_scorer(weights_sha256: str):
    """ids (B, 2304) -> the ``OOD_SCORE`` of each image (float32 (B,)) under the shipped reference
    counts; None, with a note on stderr, when there are none or they belong to other weights."""
    try:
        reference = load_reference()
    except ReferenceFileError as e:
        print(f"note: no ood_score column ({e})", file=sys.stderr)
        return None
    if reference.get("weights_sha256") != weights_sha256:
        print("note: no ood_score column: the reference counts were made with other weights "
              "(python -m analysis.reference makes them)", file=sys.stderr)
        return None
    probs = token_probabilities(reference["counts"], reference["alpha"])
    return lambda ids: np.array([ood_score(i, probs)[OOD_SCORE] for i in ids], np.float32)


def main(argv=None) -> int:
    return tokenize.main(argv, ood_scorer)


if __name__ == "__main__":
    sys.exit(main())
