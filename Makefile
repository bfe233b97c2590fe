# make up    deploy a stack (STACK=dev by default) with the Pulumi CLI
# make test  lint, type-check and run the tests (no Pulumi CLI or AWS account needed)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# The versions `make test-pythons` checks besides $(PYTHON) (the floor, 3.11): found on PATH as pythonX.Y.
PYTHONS ?= 3.12 3.13

# Before anything is installed: one line on a Python older than the floor (pyproject's requires-python).
ifneq ($(filter venv lint test benchmark,$(MAKECMDGOALS)),)
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)
ifeq ($(shell $(PYTHON) -c 'import sys; print(sys.version_info >= (3, 11))' 2>/dev/null),False)
$(error pe-lb needs Python 3.11 or newer; $(PYTHON) is $(PYTHON_VERSION))
endif
endif
STACK ?= dev

.PHONY: up test test-puppet test-haproxy test-pythons lint venv preview destroy benchmark benchmark-balancing clean status drain undrain wait-healthy probe

up:
	@./scripts/require-pulumi
	@$(MAKE) --no-print-directory venv
	@pulumi whoami >/dev/null 2>&1 || pulumi login --local
	@pulumi stack select "$(STACK)" 2>/dev/null || pulumi stack init "$(STACK)"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" pulumi up --stack "$(STACK)"

preview:
	@./scripts/require-pulumi
	@$(MAKE) --no-print-directory venv
	@pulumi whoami >/dev/null 2>&1 || pulumi login --local
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" pulumi preview --stack "$(STACK)"

destroy:
	@./scripts/require-pulumi
	pulumi destroy --stack "$(STACK)"

venv: $(VENV)/.installed

# pe-lb itself too (editable, no dependencies): its poolctl command, which the health gate runs
# from PATH (make up puts $(VENV)/bin first).
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv "$(VENV)"
	"$(VENV)/bin/pip" install --quiet --upgrade pip
	"$(VENV)/bin/pip" install --quiet -r requirements.txt
	"$(VENV)/bin/pip" install --quiet --no-deps --no-build-isolation -e .
	touch "$@"

lint: venv
	"$(VENV)/bin/ruff" check .
	"$(VENV)/bin/ruff" format --check .
	"$(VENV)/bin/mypy"
	"$(VENV)/bin/shellcheck" components/scripts/*.sh tests/*.sh scripts/* .ci/run
	# Scripts that run on the primary: Python 3.6 syntax and standard library (RHEL 7/8, SLES 15).
	"$(VENV)/bin/vermin" -t=3.6- --no-tips --violations --eval-annotations components/scripts/*.py components/scripts/pe_primary/*.py

test: lint
	"$(PY)" -m pytest

# Root on Debian 12, and the Debian packages $(2) installed if missing, for `make $(1)`.
define debian_packages
	@[ "$$(id -u)" = 0 ] || { echo "make $(1): run it as root (it installs Debian packages)" >&2; exit 1; }
	@command -v dpkg-query >/dev/null && command -v apt-get >/dev/null || { echo "make $(1): needs Debian 12 (dpkg, apt-get)" >&2; exit 1; }
	@missing=$$(for package in $(2); do \
	  dpkg-query -W -f='$${db:Status-Status}' "$$package" 2>/dev/null | grep -qx installed || echo "$$package"; done); \
	if [ -n "$$missing" ]; then \
	  echo "make $(1): installing" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(2); \
	fi
endef

# The real-Puppet tier (tests/real_puppet): the primary script against open-source Puppet 7 on this
# machine (Debian 12, as root: PostgreSQL runs as postgres), installing the packages it lacks.
# Never part of `make test`.
REAL_PUPPET_PACKAGES := puppetserver puppet puppetdb puppet-terminus-puppetdb postgresql
test-puppet: venv
	$(call debian_packages,test-puppet,$(REAL_PUPPET_PACKAGES))
	PE_LB_REAL_PUPPET=1 "$(PY)" -m pytest tests/real_puppet -p no:cacheprovider

# The real-HAProxy tier (tests/real_haproxy): the rendered haproxy.cfg in Debian's HAProxy, with
# Debian's dnsmasq as the resolver, in front of stub compile masters on 127.0.0.x (Debian 12, as
# root), installing the packages it lacks. Never part of `make test`.
REAL_HAPROXY_PACKAGES := haproxy dnsmasq-base
test-haproxy: venv
	$(call debian_packages,test-haproxy,$(REAL_HAPROXY_PACKAGES))
	PE_LB_REAL_HAPROXY=1 "$(PY)" -m pytest tests/real_haproxy -p no:cacheprovider

# The test suite on every other supported Python, each in its own venv (.venv-3.12, ...).
test-pythons:
	@for version in $(PYTHONS); do \
	  python="$$(for candidate in $$(command -v python$$version) \
	             $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$$version*/bin/python$$version; do \
	             "$$candidate" --version >/dev/null 2>&1 && { echo "$$candidate"; break; }; done)"; \
	  [ -n "$$python" ] || { echo "make: no working python$$version (PATH or pyenv)" >&2; exit 1; }; \
	  $(MAKE) --no-print-directory VENV=".venv-$$version" PYTHON="$$python" venv || exit 1; \
	  echo "== Python $$version"; ".venv-$$version/bin/python" -m pytest -p no:cacheprovider || exit 1; \
	done

# Operations (poolctl): make status STACK=dev, make drain STACK=dev INSTANCE=i-..., make probe CACERT=ca.pem
POOLCTL = "$(PY)" -m poolctl
status: venv
	$(POOLCTL) status --stack "$(STACK)"
drain: venv
	$(POOLCTL) drain "$(INSTANCE)" --stack "$(STACK)"
undrain: venv
	$(POOLCTL) undrain "$(INSTANCE)" --stack "$(STACK)"
wait-healthy: venv
	$(POOLCTL) wait-healthy --stack "$(STACK)"
probe: venv
	$(POOLCTL) probe --stack "$(STACK)" $(if $(CACERT),--cacert "$(CACERT)")

benchmark: venv
	"$(PY)" -m benchmarks.evaluate
	"$(PY)" -m benchmarks.join

# Least connections against the NLB's flow hash, in real HAProxy (about 25 minutes; QUICK=1: 8).
benchmark-balancing: venv
	$(call debian_packages,benchmark-balancing,$(REAL_HAPROXY_PACKAGES))
	"$(PY)" -m benchmarks.balancing $(if $(QUICK),--quick)

clean:
	rm -rf "$(VENV)" .venv-* build *.egg-info .pytest_cache .mypy_cache .ruff_cache
