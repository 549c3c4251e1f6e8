# One entry point for people and CI. Every target installs what it needs first.
#   make deploy   deploy the all-in-one stack on this host (inventories/local)
#   make test     every test layer: lint, sanity, unit, integration (modules and Molecule)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV ?= .venv
BIN := $(VENV)/bin
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
export PYTHON := $(CURDIR)/$(BIN)/python
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Molecule scenarios in the order they build on each other.
# `systemd` boots Debian 12 hosts with systemd-nspawn (root, network namespaces; tests/testbed/nspawn.sh).
SCENARIOS ?= docker postgres redis minio default contract supabase traefik caddy monitoring backup systemd
# Where images come from for `make deploy`: `testbed` builds them from tests/images and serves them
# from a local registry (the air-gapped route); `upstream` pulls the pinned upstream images.
IMAGES ?= testbed
INVENTORY ?= inventories/local/hosts.yml

.PHONY: setup setup-test testbed lint sanity unit integration modules molecule test deploy build docs clean

setup:
	scripts/setup.sh runtime

setup-test:
	scripts/setup.sh test

testbed: setup-test
	tests/testbed/setup.sh all

lint: setup-test
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint
	$(MAKE) --no-print-directory docs

sanity: setup-test
	tests/testbed/setup.sh tools
	scripts/sanity.sh

unit: setup-test
	$(BIN)/pytest tests/unit

# Module integration tests start their own servers (SeaweedFS, PostgreSQL) on loopback; the role
# rendering tests validate configuration with the test bed's real programs (Envoy), so the engine
# and its images come first.
modules: testbed
	tests/testbed/setup.sh tools
	$(BIN)/pytest tests/integration

# Molecule keeps a scenario's state between runs (under ~/.ansible/tmp) and skips `prepare` when an
# earlier run of the same checkout path got that far; every run here starts from a fresh state.
molecule: testbed
	for scenario in $(SCENARIOS); do \
	  rm -f "$$HOME"/.ansible/tmp/molecule.*."$$scenario"/state.yml; \
	  $(BIN)/molecule test -s $$scenario; \
	done

integration: modules molecule

test: lint sanity unit integration
	@echo "make test: every layer passed"

# The built tarball installs, every module, plugin and role entry point renders in ansible-doc, and
# no build carries a secret, local state or a cache, whatever ran in the checkout before.
docs: setup-test
	scripts/check_docs.sh
	$(BIN)/python scripts/check_build.py

build: setup
	$(BIN)/ansible-galaxy collection build --force --output-path build/

deploy: setup
	scripts/deploy.sh $(IMAGES) $(INVENTORY)

clean:
	rm -rf build .cache/molecule tests/output
