"""Writes the NPY and IDX fixtures of Tests/DistillDataTests/Fixtures with NumPy and gzip.

Run: python3 Tests/Reference/make_data_fixtures.py   (NumPy 2.x; CI does not run it, the output
is checked in). Every NPY array's values are listed in fixtures.txt for the tests to compare.
"""
import gzip, os
import numpy as np

out = os.path.join(os.path.dirname(__file__), "..", "DistillDataTests", "Fixtures")
os.makedirs(out, exist_ok=True)
lines = []

def save(name, arr, version=None):
    path = os.path.join(out, name)
    with open(path, "wb") as f:
        if version is None:
            np.save(f, arr)
        else:
            np.lib.format.write_array(f, arr, version=version)
    flat = np.ascontiguousarray(arr).ravel()
    values = " ".join(repr(float(v)) if arr.dtype.kind == "f" else str(int(v)) for v in flat)
    lines.append(f"{name}\t{arr.dtype.str}\t{','.join(map(str, arr.shape))}\t{values}")

base = np.array([[1.5, -2.25, 3.0], [0.0, 1e-3, -7.5]])
save("f4.npy", base.astype("<f4"))
save("f8.npy", base.astype("<f8"))
save("i4.npy", np.array([[1, -2, 3], [2147483647, -2147483648, 0]], dtype="<i4"))
save("i8.npy", np.array([5, -6, 9007199254740993], dtype="<i8"))
save("u1.npy", np.arange(0, 24, dtype="u1").reshape(2, 3, 4) * 10)
save("f4_big.npy", base.astype(">f4"))
save("i8_big.npy", np.array([1, -2, 300], dtype=">i8"))
save("f4_v2.npy", base.astype("<f4"), version=(2, 0))
save("f4_v3.npy", base.astype("<f4"), version=(3, 0))
save("scalar.npy", np.array(2.5, dtype="<f4"))
save("empty.npy", np.zeros((0, 3), dtype="<f4"))
save("fortran.npy", np.asfortranarray(base.astype("<f4")))
with open(os.path.join(out, "fixtures.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")

# A tiny MNIST-layout data set: 6 training and 4 test images of 5x4 pixels, gzip-compressed.
def idx(data, dims):
    header = bytes([0, 0, 8, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
    return header + bytes(data)

rng = np.random.default_rng(1)
mnist = os.path.join(out, "mnist")
os.makedirs(mnist, exist_ok=True)
for prefix, n in (("train", 6), ("t10k", 4)):
    images = rng.integers(0, 256, size=(n, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    with gzip.open(os.path.join(mnist, f"{prefix}-images-idx3-ubyte.gz"), "wb") as f:
        f.write(idx(images.ravel(), images.shape))
    with gzip.open(os.path.join(mnist, f"{prefix}-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(idx(labels, labels.shape))
    np.save(os.path.join(mnist, f"{prefix}_expected_images.npy"), images)
    np.save(os.path.join(mnist, f"{prefix}_expected_labels.npy"), labels.astype("<i8"))
