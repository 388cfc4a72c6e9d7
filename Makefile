# Distill: `make demo` and `make test` work on a fresh Debian/Ubuntu machine.
SWIFT ?= swift
# Release builds target the CPU they are built on (AVX2/FMA where present), like -march=native:
# the loss kernels and element-wise layers are written with 8-lane SIMD. Empty it for a
# portable binary: make bench NATIVE=
NATIVE ?= -Xswiftc -target-cpu -Xswiftc native
RELEASE = $(SWIFT) build -c release $(NATIVE)

.PHONY: setup build demo test lint format bench bench-pytorch fuzz interop text-corpus tagging-corpus clean

setup:
	@./scripts/setup

build: setup
	$(RELEASE)

## The main job, built in release mode.
demo: setup
	$(RELEASE) --product distill
	.build/release/distill demo

## Every test (unit, golden values, finite differences, end to end).
test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test

## Style: swift-format (shipped with the Swift 6 toolchain) with the repository's .swift-format.
FORMATTED = Sources Tests Fuzz Package.swift
lint:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMATTED)

format:
	$(SWIFT) format --in-place --recursive --parallel $(FORMATTED)

## Benchmarks: prints figures (see BENCHMARKS.md); asserts nothing.
bench: setup
	$(RELEASE) --product DistillBenchmarks
	.build/release/DistillBenchmarks

## The training step beside PyTorch's on this machine, in alternation, the transformer's also
## round by round in processes kept alive (scripts/bench-paired). PyTorch is the CPU-only torch
## wheel, from PyTorch's index or a local wheel directory, with numpy from PyPI, in its own
## virtual environment (about 200 MB): make bench-pytorch RUNS=3
BENCH_VENV ?= .venv-bench
TORCH ?= torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
RUNS ?= 3
bench-pytorch: setup
	$(RELEASE) --product DistillBenchmarks
	@test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV) || { ./scripts/setup python3-venv && python3 -m venv $(BENCH_VENV); }
	$(BENCH_VENV)/bin/python -c "import torch, numpy" 2>/dev/null || $(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --retries 1 --extra-index-url $(TORCH_INDEX) "$(TORCH)" numpy
	./scripts/bench-vs-pytorch .build/release/DistillBenchmarks $(BENCH_VENV)/bin/python $(RUNS)

## A real English corpus for language models (the Python documentation's sources, from Debian's
## python3.11-doc) in $(TEXT): make text-corpus TEXT=text
TEXT ?= text
text-corpus: setup
	@./scripts/setup python3.11-doc
	./scripts/text-corpus $(TEXT)

## A real token-labelling task in the CoNLL layout, capitalisation restoration, built from the text
## corpus's prose (scripts/tagging-corpus) in $(TAGGING): make tagging-corpus TAGGING=truecase
TAGGING ?= truecase
tagging-corpus: text-corpus
	./scripts/tagging-corpus $(TEXT) $(TAGGING)

## Fuzz every file reader with libFuzzer + AddressSanitizer: make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 600
fuzz: setup
	./scripts/fuzz $(FUZZ_SECONDS)

## Interoperability with real clients (numpy, safetensors, onnx, onnxruntime, seqeval from PyPI,
## in a virtual environment): NPY shards in, ONNX and safetensors out, a PyTorch state dict in,
## entity scores against seqeval's.
VENV ?= .venv-interop
INTEROP_PACKAGES = numpy safetensors onnx onnxruntime seqeval
interop: setup
	$(RELEASE) --product distill
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV) || { ./scripts/setup python3-venv && python3 -m venv $(VENV); }
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(INTEROP_PACKAGES)
	$(VENV)/bin/python scripts/interop.py .build/release/distill

clean:
	rm -rf .build .build-fuzz $(VENV) $(BENCH_VENV)
