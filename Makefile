# The two set-up commands: `make test` and `make demo`. Both install what they need on a
# fresh Debian machine (apt packages, a virtual environment, the package) and are quick
# when everything is already there.
SHELL := /bin/bash
# Debian's python3 where there is one: built with profile-guided optimisation and LTO, it
# runs multihome (and every Python process a lab starts) ~20% faster than a plain source
# build of the same version, such as pyenv's (bench/results/up_down.txt).
PYTHON ?= $(if $(wildcard /usr/bin/python3),/usr/bin/python3,python3)
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := containernetworking-plugins dnsmasq-base iproute2 util-linux procps curl netplan.io graphviz tcpdump chromium kubectl iputils-ping golang-go python3-venv

# `make test-kernel` only: a VM with a kernel that has 802.1q, ipvlan and bridge VLAN filtering.
KERNEL_VM_APT_PACKAGES := qemu-system-x86 debootstrap e2fsprogs
STAMP := $(VENV)/.installed

.PHONY: test test-kernel demo deps system venv calico lint bench clean

test: deps
	$(BIN)/pytest -q

# Not part of `make test` (minutes, not seconds): boots Debian's kernel in a VM under qemu's
# software emulation and proves the trunk, vlan-plugin, ipvlan and bridge-VLAN paths with the
# real CNI plugins and the lab. The VM is built once into .cache/kernel-vm/ (about 2.5 GB).
test-kernel: deps
	@$(call apt_install,$(KERNEL_VM_APT_PACKAGES))
	MULTIHOME_KERNEL_VM=1 $(BIN)/pytest -q tests/kernel

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
	test -z "$$(gofmt -l $(CALICO_DIR))" || { gofmt -l $(CALICO_DIR); exit 1; }
	cd $(CALICO_DIR) && $(GO) vet .

bench: deps
	$(BIN)/python -m bench

deps: system venv calico

# apt only when a package is missing: a machine that has them all does not touch apt.
define apt_install
missing=""; for p in $(1); do \
  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
done; \
if [ -n "$$missing" ]; then \
  echo "installing system packages:$$missing"; \
  if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install:$$missing" >&2; exit 2; fi; \
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
fi
endef

system:
	@$(call apt_install,$(APT_PACKAGES))

venv: $(STAMP)

$(STAMP): pyproject.toml | system
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# The lab's calico CNI plugin (Go, standard library only: no module download). The go
# command's caches stay in .cache/, so it needs no $$HOME; the touch marks the binary as
# newer than its sources when go found nothing to rewrite (the lab compares the times).
CALICO_DIR := multihome/lab/plugins/calico
CALICO_BIN := $(CALICO_DIR)/build/calico
GO := GOCACHE=$(CURDIR)/.cache/go-build GOPATH=$(CURDIR)/.cache/go GOPROXY=off CGO_ENABLED=0 go

calico: $(CALICO_BIN)

$(CALICO_BIN): $(wildcard $(CALICO_DIR)/*.go) $(CALICO_DIR)/go.mod | system
	cd $(CALICO_DIR) && $(GO) build -trimpath -ldflags=-s -o build/calico .
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(CALICO_DIR)/build .cache/go-build .cache/go
