# make up    deploy a stack (STACK=dev by default) with the Pulumi CLI
# make test  lint, type-check and run the tests (no Pulumi CLI or AWS account needed)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: up test lint venv preview destroy benchmark clean status drain undrain wait-healthy probe

up:
	@./scripts/require-pulumi
	@$(MAKE) --no-print-directory venv
	@pulumi whoami >/dev/null 2>&1 || pulumi login --local
	@pulumi stack select "$(STACK)" 2>/dev/null || pulumi stack init "$(STACK)"
	pulumi up --stack "$(STACK)"

preview:
	@./scripts/require-pulumi
	@$(MAKE) --no-print-directory venv
	@pulumi whoami >/dev/null 2>&1 || pulumi login --local
	pulumi preview --stack "$(STACK)"

destroy:
	@./scripts/require-pulumi
	pulumi destroy --stack "$(STACK)"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	python3 -m venv "$(VENV)"
	"$(VENV)/bin/pip" install --quiet --upgrade pip
	"$(VENV)/bin/pip" install --quiet -r requirements.txt
	touch "$@"

lint: venv
	"$(VENV)/bin/ruff" check .
	"$(VENV)/bin/ruff" format --check .
	"$(VENV)/bin/mypy"
	"$(VENV)/bin/shellcheck" components/scripts/*.sh scripts/* .ci/run
	# Scripts that run on the primary: Python 3.6 syntax and standard library (RHEL 7/8, SLES 15).
	"$(VENV)/bin/vermin" -t=3.6- --no-tips --violations --eval-annotations components/scripts/*.py

test: lint
	"$(PY)" -m pytest

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

clean:
	rm -rf "$(VENV)" .pytest_cache .mypy_cache .ruff_cache
