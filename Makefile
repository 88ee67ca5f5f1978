# The two set-up commands: `make test` and `make demo`. Both install what they need on a
# fresh Debian machine (apt packages, a virtual environment, the package) and are quick
# when everything is already there.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := containernetworking-plugins dnsmasq-base iproute2 util-linux procps curl netplan.io graphviz tcpdump chromium kubectl
STAMP := $(VENV)/.installed

.PHONY: test demo deps system venv lint bench clean

test: deps
	$(BIN)/pytest -q

# The main job on the built-in seed design: check it, bring it up, look inside. The lab
# stays up for you to explore; `.venv/bin/multihome down` removes it.
demo: deps
	$(BIN)/multihome validate
	$(BIN)/multihome up
	$(BIN)/multihome exec multus-network-attachments/net-tools -- ip addr show
	$(BIN)/multihome exec multus-network-attachments/net-tools -- ip route
	$(BIN)/multihome exec multus-network-attachments/net-tools -- curl -s 172.16.60.31
	$(BIN)/multihome verify
	@echo
	@echo "The lab is up. Look inside:  .venv/bin/multihome get pods -o wide"
	@echo "                             .venv/bin/multihome exec multus-network-attachments/net-tools -- ip addr"
	@echo "Take it down:                .venv/bin/multihome down"

lint: deps
	$(BIN)/ruff check multihome tests bench
	$(BIN)/ruff format --check multihome tests bench
	$(BIN)/mypy

bench: deps
	$(BIN)/python -m bench

deps: system venv

# apt only when a package is missing: a machine that has them all does not touch apt.
system:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install:$$missing" >&2; exit 2; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
