# Entry points for people and CI. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
# chromium and chromium-driver run nn-serve's page in the browser test (headless, no display needed).
APT_PACKAGES := libhdf5-dev zlib1g-dev libopenblas-dev pkg-config dataset-fashion-mnist libpng-dev libturbojpeg0-dev \
  chromium chromium-driver
# Pinned: the parity fixtures' check regenerates them bit for bit with these versions.
# pytest, hypothesis and build run the Python package's tests (python/, `pip install './python[test]'`
# names the same two for its users); tritonclient checks nn-serve against Triton's own client; selenium
# drives chromium for the browser test; dask[distributed] runs nn-infer as a streaming worker on a
# LocalCluster (python/tests/test_dask.py).
PIP_PACKAGES := numpy==2.4.6 h5py==3.16.0 scipy==1.17.1 jsonschema onnx onnxruntime safetensors keras 'jax[cpu]' \
  pytest hypothesis build 'tritonclient[http]' selenium 'dask[distributed,dataframe]'
DEMO_DIR ?= out/demo
EPOCHS ?= 5

.PHONY: setup test test-python demo build release fixtures check-fixtures onnx-proto fuzz fuzz-long fuzz-build fuzz-corpus bench bench-serve soak bench-tools clean

# Installs the system libraries, Fashion-MNIST and the Python packages the tests use.
setup:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	fi
	@KERAS_BACKEND=jax python3 -c "import numpy, h5py, scipy, jsonschema, onnx, onnxruntime, safetensors, jax, keras, pytest, hypothesis, build, tritonclient.http, selenium, dask.distributed, dask.dataframe; assert numpy.__version__ == '2.4.6' and h5py.__version__ == '3.16.0' and scipy.__version__ == '1.17.1'" 2>/dev/null || \
	  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore $(PIP_PACKAGES)

build: setup
	swift build

# Release binaries link the Swift runtime and Foundation statically: a process starts about
# 2.5 ms sooner (no dynamic symbol binding for them; nn-infer on one image 10.2 -> 7.6 ms here),
# for larger files (nn-infer 6.6 -> 27 MB). bench.py builds with the same flags.
RELEASE_FLAGS := -Xswiftc -static-stdlib
export RELEASE_FLAGS

release: setup
	swift build -c release $(RELEASE_FLAGS)

# Sets up and runs the whole test suite (nn-serve also through tritonclient and in headless chromium,
# whose screenshot goes to out/serve/browser.png), checks that the parity fixtures regenerate exactly, then
# runs the Python package's tests (python/) against the debug binaries just built; they also
# pip-install the package into a fresh virtual environment and build its wheel.
test: setup
	swift build --build-tests
	swift test
	python3 Tests/ServeTests/triton_client.py .build/debug
	python3 Tests/ServeTests/shutdown_test.py .build/debug
	python3 Tests/ServeTests/browser_test.py .build/debug out/serve/browser.png
	python3 Fixtures/check_parity_fixtures.py
	cd python && NNM_BIN_DIR=$(CURDIR)/.build/debug KERAS_BACKEND=jax python3 -m pytest -q -p no:cacheprovider

# The Python package's tests alone (the Swift tools they cross-check are built first).
test-python: setup
	swift build
	cd python && NNM_BIN_DIR=$(CURDIR)/.build/debug KERAS_BACKEND=jax python3 -m pytest -q -p no:cacheprovider

# Regenerates the parity fixtures (Fixtures/parity/) from our NumPy reference code.
fixtures: setup
	python3 Fixtures/generate_parity.py

check-fixtures: setup
	python3 Fixtures/check_parity_fixtures.py

# Sets up, trains on Fashion-MNIST, saves .nnm, converts, and classifies the test set.
demo: release
	@mkdir -p $(DEMO_DIR)
	.build/release/nn-train --epochs $(EPOCHS) --save $(DEMO_DIR)/fashion.nnm
	.build/release/nnconv export $(DEMO_DIR)/fashion.nnm -o $(DEMO_DIR)/fashion.h5
	.build/release/nnconv import $(DEMO_DIR)/fashion.h5 -o $(DEMO_DIR)/fashion-from-h5.nnm
	.build/release/nnconv diff $(DEMO_DIR)/fashion.nnm $(DEMO_DIR)/fashion-from-h5.nnm
	.build/release/nn-infer $(DEMO_DIR)/fashion-from-h5.nnm /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz \
	  --labels /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz --show 5

# Regenerates Sources/NNONNX/onnx.pb.swift, committed so that builds need no protoc: onnx.proto3
# from the installed onnx package (its own gen_proto script), Debian's protoc, and protoc-gen-swift
# built outside the repository from the swift-protobuf version SwiftPM resolved.
ONNX_PROTO_SWIFT := Sources/NNONNX/onnx.pb.swift
PROTOC_GEN_SWIFT_DIR ?= /tmp/nnm-protoc-gen-swift
onnx-proto:
	@command -v protoc >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null; }
	@python3 -c "import onnx" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore onnx
	swift package resolve
	@version=$$(git -C .build/checkouts/swift-protobuf describe --tags --exact-match) && \
	if [ "$$(cat $(PROTOC_GEN_SWIFT_DIR)/VERSION 2>/dev/null)" != "$$version" ]; then \
	  rm -rf $(PROTOC_GEN_SWIFT_DIR) && git clone -q .build/checkouts/swift-protobuf $(PROTOC_GEN_SWIFT_DIR)/src && \
	  git -C $(PROTOC_GEN_SWIFT_DIR)/src checkout -q "$$version" && \
	  swift build -c release --product protoc-gen-swift --package-path $(PROTOC_GEN_SWIFT_DIR)/src && \
	  echo "$$version" > $(PROTOC_GEN_SWIFT_DIR)/VERSION; \
	fi
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	python3 -W ignore::RuntimeWarning -m onnx.gen_proto -o "$$tmp" onnx >/dev/null && \
	protoc --plugin=protoc-gen-swift=$(PROTOC_GEN_SWIFT_DIR)/src/.build/release/protoc-gen-swift \
	  --swift_out="$$tmp" --swift_opt=Visibility=Internal -I "$$tmp" onnx.proto3 && \
	{ echo "// Generated by \`make onnx-proto\`: onnx.proto3 from the onnx $$(python3 -c 'import onnx; print(onnx.__version__)') PyPI package"; \
	  echo "// (python3 -m onnx.gen_proto), $$(protoc --version) and protoc-gen-swift $$(cat $(PROTOC_GEN_SWIFT_DIR)/VERSION)."; \
	  echo "// Committed so that building needs no protoc; regenerate it rather than editing it."; \
	  echo; cat "$$tmp/onnx.pb.swift"; } > $(ONNX_PROTO_SWIFT)
	@echo "wrote $(ONNX_PROTO_SWIFT)"

# libFuzzer harnesses for every reader of untrusted bytes (Fuzz/README.md), built with the
# toolchain's fuzzer and address sanitizers in their own scratch path. `make fuzz` runs each for
# FUZZ_SECONDS; `make fuzz-long` runs each until 10 million executions or 30 minutes. New inputs go
# to $(FUZZ_SCRATCH)/corpus/<harness> (Fuzz/corpus/<harness> holds the committed seeds, read only);
# crashes to $(FUZZ_SCRATCH)/crashes/<harness>/. One harness runs at a time. Swift's own crash
# backtracer is off so that traps reach libFuzzer's handler (it would also trip AddressSanitizer).
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES ?= fuzz-nnm fuzz-idx fuzz-npy fuzz-keras-config fuzz-pickle fuzz-import fuzz-image
FUZZ_SCRATCH ?= .build-fuzz
FUZZ_BUILD_FLAGS := -c debug --scratch-path $(FUZZ_SCRATCH) -Xswiftc -sanitize=fuzzer,address \
  -Xswiftc -parse-as-library -Xswiftc -DFUZZING -Xswiftc -use-ld=lld
FUZZ_RUN_FLAGS := -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
# Largest input: 64 KiB, 128 KiB for the importer (whose seeds include small .keras and .h5 files).
FUZZ_MAX_LEN ?= 65536
FUZZ_IMPORT_MAX_LEN ?= 131072

fuzz-build:
	@for h in $(FUZZ_HARNESSES); do swift build $(FUZZ_BUILD_FLAGS) --product $$h || exit 1; done

# $(1): the libFuzzer flags that bound each run.
define run_fuzzers
	@failed=""; for h in $(FUZZ_HARNESSES); do \
	  mkdir -p $(FUZZ_SCRATCH)/corpus/$$h $(FUZZ_SCRATCH)/crashes/$$h; \
	  case $$h in fuzz-import) len=$(FUZZ_IMPORT_MAX_LEN);; *) len=$(FUZZ_MAX_LEN);; esac; \
	  echo "== $$h"; \
	  SWIFT_BACKTRACE=enable=no $(FUZZ_SCRATCH)/debug/$$h $(FUZZ_SCRATCH)/corpus/$$h Fuzz/corpus/$$h $(1) $(FUZZ_RUN_FLAGS) \
	    -max_len=$$len -artifact_prefix=$(FUZZ_SCRATCH)/crashes/$$h/ || failed="$$failed $$h"; \
	done; \
	if [ -n "$$failed" ]; then echo "crashes in:$$failed (inputs in $(FUZZ_SCRATCH)/crashes/)"; exit 1; fi
endef

fuzz: fuzz-build
	$(call run_fuzzers,-max_total_time=$(FUZZ_SECONDS))

fuzz-long: fuzz-build
	$(call run_fuzzers,-runs=10000000 -max_total_time=1800)

# Regenerates the seed corpora in Fuzz/corpus/ (needs numpy and h5py).
fuzz-corpus: setup
	python3 Fuzz/make_corpus.py

# Benchmarks (BENCHMARKS.md): builds release binaries in their own scratch path, runs every
# workload for our tools and for the NumPy / onnxruntime / h5py / safetensors anchors in the same
# run, and prints medians and ratios (also written to out/bench/results.md and results.json).
# Pass options with BENCH_ARGS, e.g. BENCH_ARGS="--rounds 5" or "--quick" or "--only infer".
# Then the serving benchmark (Benchmarks/serve_bench.py): nn-serve against FastAPI + uvicorn +
# onnxruntime under wrk at 1, 8 and 64 connections (out/bench/serve.md); SERVE_BENCH_ARGS passes
# options, e.g. "--duration 20". `make bench-serve` runs it alone; `make soak` runs nn-serve alone at
# 64 connections for SOAK_SECONDS (600) and reports errors and its memory (out/bench/soak.md).
BENCH_ARGS ?=
SERVE_BENCH_ARGS ?=
SOAK_SECONDS ?= 600
bench: bench-tools
	python3 Benchmarks/bench.py $(BENCH_ARGS)
	python3 Benchmarks/serve_bench.py $(SERVE_BENCH_ARGS)

bench-serve: bench-tools
	python3 Benchmarks/serve_bench.py $(SERVE_BENCH_ARGS)

soak: bench-tools
	python3 Benchmarks/serve_bench.py --soak $(SOAK_SECONDS)

bench-tools: setup
	@for t in hyperfine wrk; do command -v $$t >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $$t >/dev/null; }; done
	@python3 -c "import onnx, onnxruntime, safetensors, threadpoolctl, fastapi, uvicorn" 2>/dev/null || \
	  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore onnx onnxruntime safetensors threadpoolctl fastapi uvicorn

clean:
	rm -rf .build out
