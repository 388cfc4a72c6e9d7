"""IDX files (MNIST's format, optionally gzipped) as NumPy arrays, for the Python scripts here."""
import gzip
import os
import sys

import numpy as np


def idx(path):
    """The IDX file at `path` or `path + ".gz"` as a uint8 array of its shape."""
    for candidate in (path, path + ".gz"):
        if os.path.exists(candidate):
            raw = open(candidate, "rb").read()
            if candidate.endswith(".gz"):
                raw = gzip.decompress(raw)
            dims = raw[3]
            shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    sys.exit(f"{path}[.gz] not found")
