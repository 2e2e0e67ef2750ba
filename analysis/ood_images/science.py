"""Scientific images bundled with scikit-image: microscopy, astronomy, a retina, a phantom."""

import numpy as np
import skimage.data

SEED = 0  # for the random blobs


def images() -> dict[str, np.ndarray]:
    hubble, ihc = skimage.data.hubble_deep_field(), skimage.data.immunohistochemistry()
    return {
        "cell": skimage.data.cell(),
        "immunohistochemistry": ihc,
        "immunohistochemistry_crop": ihc[100:260, 300:460],
        "hubble_deep_field": hubble,
        "hubble_crop": hubble[300:500, 900:1100],
        "retina": skimage.data.retina(),
        "microaneurysms": skimage.data.microaneurysms(),
        "shepp_logan_phantom": skimage.data.shepp_logan_phantom(),
        "binary_blobs": skimage.data.binary_blobs(rng=SEED),
    }
