# Entry points for people and CI. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
APT_PACKAGES := libhdf5-dev zlib1g-dev libopenblas-dev pkg-config dataset-fashion-mnist
# Pinned: the parity fixtures' check regenerates them bit for bit with these versions.
PIP_PACKAGES := numpy==2.4.6 h5py==3.16.0 scipy==1.17.1 jsonschema
DEMO_DIR ?= out/demo
EPOCHS ?= 5

.PHONY: setup test demo build release fixtures check-fixtures clean

# Installs the system libraries, Fashion-MNIST and the Python packages the tests use.
setup:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	fi
	@python3 -c "import numpy, h5py, scipy, jsonschema; assert numpy.__version__ == '2.4.6' and h5py.__version__ == '3.16.0' and scipy.__version__ == '1.17.1'" 2>/dev/null || \
	  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore $(PIP_PACKAGES)

build: setup
	swift build

release: setup
	swift build -c release

# Sets up and runs the whole test suite, then checks that the parity fixtures regenerate exactly.
test: setup
	swift build --build-tests
	swift test
	python3 Fixtures/check_parity_fixtures.py

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

clean:
	rm -rf .build out
