#!/usr/bin/env python3
"""Interoperability proof, with the real tools users have (run by `make interop`).

1. A NumPy "teacher" (a ridge-regression classifier on the pixels) writes its logits on the
   training file as NPY shards of float16, float32 and float64; `distill distill
   --teacher-logits DIR` trains a student from them; and from its top-3 log-probabilities
   (`--teacher-top-k DIR` with values.npy and indices.npy).
2. The student (an MLP) and a small CNN are exported with `distill export --format onnx`; onnx's
   checker accepts them and onnxruntime's outputs match `distill logits` and `distill predict`
   on 1,000 Fashion-MNIST test images (max abs difference < 1e-4).
3. The student's safetensors file loads with `safetensors.numpy.load_file` and a few lines of
   NumPy reproduce its logits.
4. A PyTorch-style state dict (nn.Sequential names, written by safetensors' save_file, the same
   format as safetensors.torch.save_file) becomes a model with `distill import-torch`, whose
   logits equal NumPy's forward pass.
5. A byte-level transformer language model (trained for a few steps on the README as text) is
   exported to ONNX, and onnxruntime's logits match `distill logits` on every window of the test
   text; a transformer state dict (`nn.MultiheadAttention` names, built with torch when it is
   installed, else with NumPy) becomes a model with `distill import-torch`, whose logits match the
   same model's forward pass in torch (or in NumPy).
6. A tagger (a window tagger trained for a few steps on generated CoNLL sentences) tags the test
   file with `distill predict --format conll`; seqeval (its default, conlleval-compatible mode)
   scores the gold and predicted columns, and its entity precision, recall and F1, overall and per
   type, equal `distill eval --json`'s to 1e-6.

Usage: python3 scripts/interop.py DISTILL_BINARY [DATA_DIR]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from idx import idx

TOLERANCE = 1e-4
TEST_IMAGES = 1000


def run(*args):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"interop: {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def check(name, difference, tolerance=TOLERANCE):
    status = "ok" if difference < tolerance else "FAIL"
    print(f"  {name}: max abs difference {difference:.3g} ({status}, tolerance {tolerance})")
    if difference >= tolerance:
        sys.exit(f"interop: {name} differs by {difference}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    distill = os.path.abspath(sys.argv[1])
    data = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("DISTILL_DATA", "/usr/share/datasets/fashion-mnist")
    work = tempfile.mkdtemp(prefix="distill-interop-")
    print(f"interop: data {data}, work directory {work}")
    train_x = idx(os.path.join(data, "train-images-idx3-ubyte"))
    train_y = idx(os.path.join(data, "train-labels-idx1-ubyte"))
    test_x = idx(os.path.join(data, "t10k-images-idx3-ubyte"))[:TEST_IMAGES]
    test_y = idx(os.path.join(data, "t10k-labels-idx1-ubyte"))[:TEST_IMAGES]
    images = os.path.join(work, "test_images.npy")
    np.save(images, test_x)

    # 1. Teacher logits from NumPy, as shards of three dtypes, into distill.
    print("1. NumPy teacher -> NPY shards -> distill distill --teacher-logits DIR")
    x = train_x.reshape(len(train_x), -1).astype(np.float64) / 255
    x1 = np.hstack([x, np.ones((len(x), 1))])
    targets = np.eye(10)[train_y]
    weights = np.linalg.solve(x1.T @ x1 + 10 * np.eye(x1.shape[1]), x1.T @ targets)
    logits = 8 * (x1 @ weights)   # sharper than the raw least-squares scores
    teacher_accuracy = float(np.mean(logits.argmax(1) == train_y))
    shards = os.path.join(work, "teacher-logits")
    os.mkdir(shards)
    bounds = [0, 20000, 40000, len(logits)]
    for i, dtype in enumerate([np.float16, np.float32, np.float64]):
        np.save(os.path.join(shards, f"part-{i:03d}.npy"), logits[bounds[i]:bounds[i + 1]].astype(dtype))
    print(f"  teacher: ridge regression, training accuracy {teacher_accuracy:.4f}; "
          f"shards float16/float32/float64 of {bounds[1]}, {bounds[2] - bounds[1]}, {bounds[3] - bounds[2]} rows")
    student = os.path.join(work, "student.safetensors")
    distil(distill, data, ["--teacher-logits", shards], student, "from the shards (1,000 labels)")
    # The same teacher stored as its top 3 log-probabilities per example (the large-vocabulary
    # form; the rest bucket takes the missing mass as 1 - sum exp(values)).
    top = os.path.join(work, "teacher-top3")
    os.mkdir(top)
    order = np.argsort(-logits, axis=1)[:, :3]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.save(os.path.join(top, "values.npy"), np.take_along_axis(log_p, order, axis=1).astype(np.float32))
    np.save(os.path.join(top, "indices.npy"), order.astype(np.int64))
    distil(distill, data, ["--teacher-top-k", top], os.path.join(work, "student-top3.safetensors"),
           "from the top-3 log-probabilities (values.npy + indices.npy)")

    # 2. ONNX out: the MLP student and a small CNN, through onnxruntime.
    print(f"2. distill export --format onnx -> onnxruntime, {TEST_IMAGES} test images")
    cnn = os.path.join(work, "cnn.safetensors")
    run(distill, "train", "--data", data, "--arch", "cnn:4,8/fc:16", "--steps", "100", "--seed", "2", "--quiet", "--out", cnn)
    for name, model in [("student mlp:64", student), ("cnn:4,8/fc:16", cnn)]:
        path = model.replace(".safetensors", ".onnx")
        run(distill, "export", "--model", model, "--format", "onnx", "--out", path)
        onnx.checker.check_model(onnx.load(path), full_check=True)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        ort_logits, ort_probabilities = session.run(["logits", "probabilities"],
                                                    {"input": test_x.reshape(-1, 1, 28, 28).astype(np.float32)})
        ours = os.path.join(work, "logits.npy")
        run(distill, "logits", "--model", model, "--data", data, "--split", "test", "--out", ours)
        predictions = json.loads(run(distill, "predict", "--model", model, "--input", images, "--top", "10", "--format", "json"))
        probabilities = np.zeros((len(predictions), 10), dtype=np.float32)
        for row in predictions:
            for entry in row["top"]:
                probabilities[row["index"], entry["class"]] = entry["probability"]
        print(f"  {name}: onnx checker ok, opset {onnx.load(path).opset_import[0].version}")
        check(f"{name} logits, onnxruntime vs distill logits", np.abs(ort_logits - np.load(ours)[:TEST_IMAGES]).max())
        check(f"{name} probabilities, onnxruntime vs distill predict", np.abs(ort_probabilities - probabilities).max())
        if not (ort_logits.argmax(1) == np.load(ours)[:TEST_IMAGES].argmax(1)).all():
            sys.exit(f"interop: {name} predictions differ")

    # 3. Our safetensors in NumPy.
    print("3. safetensors.numpy.load_file + NumPy reproduce the student's logits")
    tensors = load_file(student)
    with safe_open(student, "np") as f:
        metadata = f.metadata()
    norm = dict(part.split("=") for part in metadata["normalization"].split(","))
    h = (test_x.reshape(len(test_x), -1).astype(np.float32) / np.float32(norm["divisor"]) - np.float32(norm["mean"])) / np.float32(norm["std"])
    dense = [token for token in metadata["layers"].split() if token.startswith("linear")]
    indices = sorted({int(name.split(".")[1]) for name in tensors})
    for n, i in enumerate(indices):
        h = h @ tensors[f"layers.{i}.weight"].T + tensors[f"layers.{i}.bias"]
        if n < len(indices) - 1:
            h = np.maximum(h, 0)
    print(f"  layers {metadata['layers']!r} ({len(dense)} dense), normalization {metadata['normalization']}")
    check("student logits, NumPy vs distill logits", np.abs(h - np.load(student_logits(distill, student, data, work))[:TEST_IMAGES]).max())

    # 4. A PyTorch-style state dict in.
    print("4. distill import-torch: an nn.Sequential state dict (safetensors) becomes a model")
    rng = np.random.default_rng(0)
    state = {"0.weight": rng.normal(0, 0.05, (48, 784)).astype(np.float32), "0.bias": rng.normal(0, 0.1, 48).astype(np.float32),
             "2.weight": rng.normal(0, 0.2, (10, 48)).astype(np.float32), "2.bias": rng.normal(0, 0.1, 10).astype(np.float32)}
    state_path = os.path.join(work, "torch_state.safetensors")
    save_file(state, state_path)
    imported = os.path.join(work, "imported.safetensors")
    run(distill, "import-torch", "--state-dict", state_path, "--arch", "mlp:48", "--input-shape", "1,28,28", "--out", imported)
    x = test_x.reshape(len(test_x), -1).astype(np.float32) / np.float32(255)
    expected = np.maximum(x @ state["0.weight"].T + state["0.bias"], 0) @ state["2.weight"].T + state["2.bias"]
    check("imported model logits, distill vs NumPy", np.abs(np.load(student_logits(distill, imported, data, work))[:TEST_IMAGES] - expected).max())

    transformer(distill, work)
    tagger(distill, work)
    shutil.rmtree(work)
    print("interop: all checks passed")


def distil(distill, data, teacher_flags, out, what):
    """Distils a 784-64-10 student with labels for 1,000 images; it must learn (test accuracy > 0.75)."""
    run(distill, "distill", "--data", data, *teacher_flags, "--arch", "mlp:64", "--labelled", "1000",
        "--temperature", "2", "--alpha", "0.9", "--steps", "1500", "--seed", "1", "--quiet", "--out", out)
    accuracy = json.loads(run(distill, "eval", "--model", out, "--data", data, "--json"))["accuracy"]
    print(f"  student 784-64-10 distilled {what}: test accuracy {accuracy:.4f}")
    if accuracy < 0.75:
        sys.exit(f"interop: the student distilled {what} did not learn")


def student_logits(distill, model, data, work):
    path = os.path.join(work, os.path.basename(model) + ".logits.npy")
    run(distill, "logits", "--model", model, "--data", data, "--split", "test", "--out", path)
    return path


# Width 64: in a build for AVX-512 its dense products run on our own kernel (`panelGemm`).
LAYERS, DIM, HEADS, CONTEXT = 2, 64, 4, 32
ARCH = f"transformer:layers={LAYERS},dim={DIM},heads={HEADS},context={CONTEXT}"


def transformer(distill, work):
    """Section 5: a transformer out to ONNX and a transformer state dict in."""
    print(f"5. a transformer ({ARCH}): distill export -> onnxruntime; import-torch of a state dict")
    text = os.path.join(work, "text")
    os.mkdir(text)
    readme = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md"), "rb").read()
    open(os.path.join(text, "train.txt"), "wb").write(readme[:20000])
    open(os.path.join(text, "test.txt"), "wb").write(readme[20000:24000])
    data = np.frombuffer(readme[20000:24000], dtype=np.uint8)
    windows = (len(data) - 1) // CONTEXT  # whole windows: window w reads bytes [w C, w C + C)
    inputs = np.stack([data[w * CONTEXT:(w + 1) * CONTEXT] for w in range(windows)]).astype(np.float32)

    def logits_of(model):
        path = os.path.join(work, os.path.basename(model) + ".text-logits.npy")
        run(distill, "logits", "--model", model, "--data", text, "--split", "test", "--out", path)
        return np.load(path)[:windows * CONTEXT].reshape(windows, CONTEXT, 256)

    model = os.path.join(work, "lm.safetensors")
    run(distill, "train", "--data", text, "--arch", ARCH, "--steps", "60", "--batch-size", "8", "--quiet", "--out", model)
    onnx_path = os.path.join(work, "lm.onnx")
    run(distill, "export", "--model", model, "--format", "onnx", "--out", onnx_path)
    onnx.checker.check_model(onnx.load(onnx_path), full_check=True)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    out_logits, out_probabilities = session.run(None, {"input": inputs})
    check(f"transformer logits on {windows} windows, onnxruntime vs distill logits",
          np.abs(out_logits - logits_of(model)).max())
    check("transformer probabilities sum to 1", np.abs(out_probabilities.sum(-1) - 1).max())

    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(1)
    state = {"tokens.weight": rng.normal(0, 0.5, (256, DIM)), "positions.weight": rng.normal(0, 0.1, (CONTEXT, DIM)),
             "ln.weight": 1 + rng.normal(0, 0.1, DIM), "ln.bias": rng.normal(0, 0.1, DIM),
             "head.weight": rng.normal(0, 0.3, (256, DIM)), "head.bias": rng.normal(0, 0.1, 256)}
    for i in range(LAYERS):
        p = f"blocks.{i}."
        for name, shape in [("ln_1.bias", DIM), ("ln_2.bias", DIM), ("attn.in_proj_weight", (3 * DIM, DIM)),
                            ("attn.in_proj_bias", 3 * DIM), ("attn.out_proj.weight", (DIM, DIM)),
                            ("attn.out_proj.bias", DIM), ("mlp.0.weight", (4 * DIM, DIM)), ("mlp.0.bias", 4 * DIM),
                            ("mlp.2.weight", (DIM, 4 * DIM)), ("mlp.2.bias", DIM)]:
            state[p + name] = rng.normal(0, 0.3, shape)
        state[p + "ln_1.weight"] = 1 + rng.normal(0, 0.1, DIM)
        state[p + "ln_2.weight"] = 1 + rng.normal(0, 0.1, DIM)
    state = {k: v.astype(np.float32) for k, v in state.items()}
    state_path = os.path.join(work, "lm_state.safetensors")
    if torch is not None:
        expected, built = torch_transformer(torch, state, inputs)
        from safetensors.torch import save_file as torch_save
        torch_save(built, state_path)
    else:
        expected, built = numpy_transformer(state, inputs), "NumPy"
        save_file(state, state_path)
    imported = os.path.join(work, "lm_imported.safetensors")
    run(distill, "import-torch", "--state-dict", state_path, "--arch", ARCH, "--out", imported)
    check(f"imported transformer logits, distill vs {'torch' if torch is not None else 'NumPy'}",
          np.abs(logits_of(imported) - expected).max())


def numpy_transformer(w, x):
    """The pre-LayerNorm transformer in NumPy (float64), as PyTorch computes it: nn.LayerNorm
    (eps 1e-5), nn.MultiheadAttention with a causal mask, exact GELU, residuals."""
    from math import erf, sqrt
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / sqrt(2))))

    def norm(h, p):
        mean, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
        return (h - mean) / np.sqrt(var + 1e-5) * w[p + "weight"] + w[p + "bias"]

    h = w["tokens.weight"].astype(np.float64)[x.astype(np.int64)] + w["positions.weight"]
    hs = DIM // HEADS
    mask = np.triu(np.full((CONTEXT, CONTEXT), -np.inf), 1)
    for i in range(LAYERS):
        p = f"blocks.{i}."
        a = norm(h, p + "ln_1.")
        qkv = a @ w[p + "attn.in_proj_weight"].T + w[p + "attn.in_proj_bias"]
        q, k, v = (qkv[..., j * DIM:(j + 1) * DIM].reshape(*x.shape, HEADS, hs).transpose(0, 2, 1, 3) for j in range(3))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hs) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        y = (s / s.sum(-1, keepdims=True)) @ v
        y = y.transpose(0, 2, 1, 3).reshape(*x.shape, DIM)
        h = h + y @ w[p + "attn.out_proj.weight"].T + w[p + "attn.out_proj.bias"]
        m = gelu(norm(h, p + "ln_2.") @ w[p + "mlp.0.weight"].T + w[p + "mlp.0.bias"])
        h = h + m @ w[p + "mlp.2.weight"].T + w[p + "mlp.2.bias"]
    return norm(h, "ln.") @ w["head.weight"].T + w["head.bias"]


def torch_transformer(torch, w, x):
    """The same model built from torch modules (scripts/torch_lm.py) holding `w`; its logits on `x`
    and its state dict (a causal-mask buffer included)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_lm import LanguageModel

    model = LanguageModel(LAYERS, DIM, HEADS, CONTEXT)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()} | {"mask": model.mask})
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x.astype(np.int64))).numpy()
    return logits, {k: v.contiguous() for k, v in model.state_dict().items()}


def conll_sentences(rng, count):
    """Sentences where a name after "mr" is a person and a city a location, as CoNLL lines."""
    names, cities = ["smith", "jones", "brown", "taylor"], ["Paris", "London", "Rome"]
    filler = ["the", "a", "met", "in", "said", "today", "near", "smith", "rome"]
    lines = ["-DOCSTART- O", ""]
    for _ in range(count):
        for _ in range(rng.integers(3, 11)):
            roll = rng.random()
            if roll < 0.2:
                lines += ["mr O", f"{rng.choice(names)} B-PER"]
                if rng.random() < 0.3:
                    lines.append(f"{rng.choice(names)} I-PER")
            elif roll < 0.35:
                lines.append(f"{rng.choice(cities)} B-LOC")
            else:
                lines.append(f"{rng.choice(filler)} O")
        lines.append("")
    return "\n".join(lines) + "\n"


def tagger(distill, work):
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    print("6. a tagger: distill predict --format conll, scored by seqeval and by distill eval")
    data = os.path.join(work, "conll")
    os.makedirs(data, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, count in [("train.conll", 300), ("test.conll", 120)]:
        with open(os.path.join(data, name), "w") as f:
            f.write(conll_sentences(rng, count))
    model = os.path.join(work, "tagger.safetensors")
    # Few steps: a tagger that still errs, so that the scores are not all 1.
    run(distill, "train", "--data", data, "--arch", "window:dim=8,hidden=16,context=16,buckets=1024",
        "--steps", "40", "--batch-size", "16", "--quiet", "--out", model)
    predicted = os.path.join(work, "predicted.conll")
    run(distill, "predict", "--model", model, "--input", os.path.join(data, "test.conll"), "--format", "conll",
        "--out", predicted)
    gold, guess = [[]], [[]]
    for line in open(predicted):
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            if gold[-1]:
                gold.append([])
                guess.append([])
            continue
        gold[-1].append(columns[1])
        guess[-1].append(columns[2])
    gold, guess = [g for g in gold if g], [p for p in guess if p]
    ours = json.loads(run(distill, "eval", "--model", model, "--data", data, "--json"))
    theirs = {"entity_precision": precision_score(gold, guess), "entity_recall": recall_score(gold, guess),
              "entity_f1": f1_score(gold, guess)}
    print(f"  seqeval: precision {theirs['entity_precision']:.4f}, recall {theirs['entity_recall']:.4f}, "
          f"F1 {theirs['entity_f1']:.4f}")
    for key, value in theirs.items():
        check(f"{key}, distill vs seqeval", abs(ours[key] - value), 1e-6)
    report = classification_report(gold, guess, output_dict=True)
    for entity, scores in ours["per_entity"].items():
        for field, theirs_field in [("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")]:
            check(f"{entity} {field}, distill vs seqeval", abs(scores[field] - report[entity][theirs_field]), 1e-6)
        if scores["support"] != report[entity]["support"]:
            sys.exit(f"interop: {entity} support {scores['support']} vs seqeval's {report[entity]['support']}")


if __name__ == "__main__":
    main()
