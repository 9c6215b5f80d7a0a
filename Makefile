# classhub: `make up` brings the platform up on this machine, `make test` tests it for real.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The locks are complete (every package, dependencies included) and installed with --no-deps,
# so that a package can be left out: rfc3987-syntax (with its lark) is the optional IRI format
# checker of jsonschema[format-nongpl]; no Jupyter schema uses it, and it builds its grammars at
# import, which costs every hub, server and nbgrader process 1.5-2.5 s (jsonschema #1428).
LEFT_OUT := rfc3987-syntax lark
SITE ?= site.yaml
CLASSHUB := $(BIN)/classhub --site $(SITE)
TORCH_VERSION := 2.13.0
# On a machine that reaches PyTorch's CPU index, e.g.
#   make wheelhouse TORCH_INDEX="--extra-index-url https://download.pytorch.org/whl/cpu"
TORCH_INDEX ?=
PYTEST_ARGS ?=

.PHONY: help deps test-deps screenshots engine gpu-standin ansible-deps hub-wheelhouse molecule-image molecule-scenarios molecule-site ansible-lint test-ansible images up down status test test-unit test-integration docs wheelhouse bench lock clean lock-images

help:
	@echo "make up      bring the platform up on this machine (builds what is missing)"
	@echo "make down    stop every student server, the hub and the proxy"
	@echo "make test    unit and integration tests (real Docker, hub, proxy, containers), ansible-lint,"
	@echo "             the preflight, base, docker and hub molecule scenarios"
	@echo "make test-ansible  ansible-lint, every role's molecule scenario, then site.yml's"
	@echo "make status  what runs; make docs: regenerate docs/config-reference.md"
	@echo "make screenshots  the browser journeys, their screenshots into docs/img/"

$(BIN)/classhub: requirements/hub.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --no-deps -r requirements/hub.lock
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/pip check
	touch $@

# The browser tests' Playwright and axe-core, in the same venv but kept out of hub.lock (the
# workstations' hub needs neither); Chromium itself is Debian's.
$(VENV)/.browser-deps: requirements/browser.lock $(BIN)/classhub
	$(BIN)/pip install -q -r requirements/browser.lock
	touch $@

node_modules/.bin/configurable-http-proxy: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(BIN)/classhub node_modules/.bin/configurable-http-proxy

test-deps: deps $(VENV)/.browser-deps
	scripts/ensure-test-tools

engine:
	scripts/ensure-engine

# Ansible and its tests live in a venv of their own (an admin's tool, not the hub's).
ANSIBLE_VENV := .venv-ansible
ANSIBLE_ROLES := preflight base nvidia docker storage swarm hub images backup
ANSIBLE_ENV := PATH=$(CURDIR)/$(ANSIBLE_VENV)/bin:$$PATH NO_COLOR=1 ANSIBLE_NOCOLOR=1

$(ANSIBLE_VENV)/bin/molecule: requirements/ansible.lock
	test -x $(ANSIBLE_VENV)/bin/python || $(PYTHON) -m venv $(ANSIBLE_VENV)
	$(ANSIBLE_VENV)/bin/pip install -q -r requirements/ansible.lock
	touch $@

ansible-deps: $(ANSIBLE_VENV)/bin/molecule

# The hub's Python packages as wheels, for the hub role (nodes that reach no package index).
HUB_WHEELHOUSE := .cache/hub-wheels
$(HUB_WHEELHOUSE)/.complete: requirements/hub.lock $(BIN)/classhub
	$(BIN)/pip download -q --disable-pip-version-check --only-binary=:all: -d $(HUB_WHEELHOUSE) --no-deps -r requirements/hub.lock
	touch $@

hub-wheelhouse: $(HUB_WHEELHOUSE)/.complete

ansible-lint: ansible-deps
	cd ansible && $(ANSIBLE_ENV) ansible-lint

# Molecule scenarios against the local systemd image (no registry, no Galaxy), one after the
# other: `make test-ansible` runs every role's and then site.yml's; `make test` runs
# ANSIBLE_TEST_ROLES (beside pytest, see `test`). SCENARIO_ROLES chooses others.
ANSIBLE_TEST_ROLES := preflight base docker hub
SCENARIO_ROLES ?= $(ANSIBLE_ROLES)

molecule-image: engine
	ansible/molecule/image/build

molecule-scenarios: ansible-deps molecule-image hub-wheelhouse
	for role in $(SCENARIO_ROLES); do \
	  (cd ansible/roles/$$role && $(ANSIBLE_ENV) ../../molecule/test-scenario) || exit 1; \
	done

molecule-site: ansible-deps molecule-image hub-wheelhouse
	cd ansible && $(ANSIBLE_ENV) molecule/test-scenario -s site

test-ansible: ansible-lint
	$(MAKE) --no-print-directory molecule-scenarios
	$(MAKE) --no-print-directory molecule-site

# The GPU tests' stand-in for the NVIDIA runtime (a runtime named nvidia that is runc), where the
# engine has no nvidia runtime; see tests/gpu/standin-runtime.
gpu-standin: engine
	tests/gpu/standin-runtime

$(SITE):
	cp site.example.yaml $(SITE)

.cache/wheelhouse/.torch-$(TORCH_VERSION):
	mkdir -p .cache/wheelhouse
	$(BIN)/pip download -q --no-deps --only-binary=:all: -d .cache/wheelhouse $(TORCH_INDEX) "torch==$(TORCH_VERSION)+cpu"
	touch $@

wheelhouse: deps .cache/wheelhouse/.torch-$(TORCH_VERSION)

images: deps engine $(SITE) wheelhouse
	$(CLASSHUB) check
	$(CLASSHUB) images build

up: images
	$(CLASSHUB) up

down: deps
	$(CLASSHUB) down

status: deps
	$(CLASSHUB) status

docs: deps
	$(BIN)/classhub docs -o docs/config-reference.md

test-unit: deps
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

test-integration: test-deps engine gpu-standin wheelhouse
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

# The browser journeys alone, their screenshots written to docs/img/ (the README shows them).
screenshots: test-deps engine gpu-standin wheelhouse
	CLASSHUB_SCREENSHOTS=$(CURDIR)/docs/img $(BIN)/pytest tests/integration/test_browser.py $(PYTEST_ARGS)

# pytest in the foreground; the molecule scenarios of ANSIBLE_TEST_ROLES at the same time in the
# background (they mostly wait on apt and systemd), their log in .cache/test-molecule.log.
test: test-deps engine gpu-standin wheelhouse ansible-lint hub-wheelhouse molecule-image
	@mkdir -p .cache; \
	$(MAKE) --no-print-directory molecule-scenarios SCENARIO_ROLES="$(ANSIBLE_TEST_ROLES)" \
	  > .cache/test-molecule.log 2>&1 & scenarios=$$!; \
	$(BIN)/pytest $(PYTEST_ARGS); tests=$$?; \
	echo "waiting for the molecule scenarios ($(ANSIBLE_TEST_ROLES))..."; \
	wait $$scenarios; molecule=$$?; \
	grep -E "^(INFO|ERROR|CRITICAL).*(Running|Executed|scenario|failed)|: ok=.*changed=" .cache/test-molecule.log; \
	if [ $$molecule -eq 0 ]; then echo "molecule scenarios passed: $(ANSIBLE_TEST_ROLES)"; \
	else awk '/^=== /{exit} {print}' .cache/test-molecule.log | tail -n 100; \
	  sed -n '/^=== /,$$p' .cache/test-molecule.log | tail -n 1000; \
	  echo "molecule scenarios FAILED (log: .cache/test-molecule.log)"; fi; \
	[ $$tests -eq 0 ] && [ $$molecule -eq 0 ]

bench: deps engine wheelhouse
	$(BIN)/python benchmarks/spawn.py

# Re-resolve the pinned versions (needs the package index), with Debian 12's own Python (3.11.2):
# the pins must install there, on the workstations, not only on a newer Python.
LOCK_PYTHON ?= /usr/bin/python3
lock:
	$(LOCK_PYTHON) -m venv .cache/lock-venv
	.cache/lock-venv/bin/pip install -q -r requirements/hub.in
	.cache/lock-venv/bin/pip uninstall -q -y $(LEFT_OUT)
	.cache/lock-venv/bin/pip check
	.cache/lock-venv/bin/pip freeze --exclude-editable | sort > requirements/hub.lock

clean:
	rm -rf $(VENV) node_modules .cache

# Re-resolve the lab image's pins for the image's own Python (needs the base image).
lock-images: deps engine wheelhouse
	LEFT_OUT="$(LEFT_OUT)" scripts/lock-images
