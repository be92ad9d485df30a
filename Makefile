# bwc: every target sets up what it needs (idempotent, fast the second time).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help setup sysdeps postgres demo test test-fast torture lint bench bench-city clean

help:
	@echo "make demo    - set up, then ingest, verify and show sample footage (offline)"
	@echo "make test    - set up, then run the whole test suite"
	@echo "make lint    - ruff + mypy --strict"
	@echo "make bench   - benchmarks (ratios against stock tools; the log at 1M events)"
	@echo "make bench-city - the custody log at 10M events (long)"
	@echo "make torture - the full set of randomized fault trials"

# System packages: ffmpeg (ffprobe) for media summaries and test footage; python3-venv;
# for the tests also tmux (the daemon's live view is read off a pane), chromium, to check the
# HTML audit report in a headless browser and to
# print the custody report to PDF, with a CJK font (CJKFONT: any font fontconfig knows for
# Chinese will do, else Debian's fonts-wqy-microhei, 1.6 MB), and
# FUSE 3 (fuse3: fusermount3; libfuse3-3) for the power-loss trials' lazy file system, and
# Ceph (one mon, one OSD, radosgw: tests/integration/rgw.py) for the S3 tests against a real
# object store, without recommends (~270 MB).
SYSPKGS ?=
FUSE ?=
CEPH ?=
CJKFONT ?=
CEPHPKGS = ceph-mon ceph-osd radosgw ceph-common
sysdeps:
	@missing=""; \
	command -v ffprobe >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	for p in $(SYSPKGS); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$(FUSE)" ]; then \
	  command -v fusermount3 >/dev/null 2>&1 || missing="$$missing fuse3"; \
	  ldconfig -p 2>/dev/null | grep -q 'libfuse3\.so' || missing="$$missing libfuse3-3"; \
	fi; \
	if [ -n "$(CJKFONT)" ]; then \
	  { command -v fc-list >/dev/null 2>&1 && [ -n "$$(fc-list :lang=zh family)" ]; } || \
	    dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing="$$missing fonts-wqy-microhei"; \
	fi; \
	$(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	ceph=""; \
	if [ -n "$(CEPH)" ]; then \
	  for t in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool; do \
	    command -v $$t >/dev/null 2>&1 || ceph="$(CEPHPKGS)"; \
	  done; \
	fi; \
	if [ -n "$$ceph" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing: $$ceph"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$ceph >/dev/null; \
	  else \
	    echo "missing system packages: $$ceph -- run: sudo apt-get install --no-install-recommends $$ceph" >&2; exit 1; \
	  fi; \
	fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing -- run: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml | sysdeps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

setup: sysdeps $(STAMP)

# PostgreSQL for the multi-station catalog tests: started when installed and down.
postgres:
	@if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then \
	  pg_isready -q -h 127.0.0.1 -p 5432 || \
	    pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start || true; \
	  for i in $$(seq 1 20); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done; \
	fi

demo: setup
	@bash scripts/demo.sh

test: SYSPKGS = chromium tmux
test: CJKFONT = 1
test: FUSE = 1
test: CEPH = 1
test: setup postgres
	@if command -v pg_ctlcluster >/dev/null 2>&1; then export BWC_TEST_PG=required; fi; \
	$(PY) -m pytest -n 2 --dist loadgroup -p no:cacheprovider $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m unit -q

# 200 kill -9 trials of the daemon, 40 power-loss trials (and 10 of `bwc ingest`), a dock of
# 5,000 files; the tally of trials, kills, files, lost and duplicated is printed at the end
torture: SYSPKGS = chromium
torture: FUSE = 1
torture: setup postgres
	BWC_FAULT_TRIALS=200 BWC_POWER_TRIALS=40 BWC_DOCK_FILES=5000 $(PY) -m pytest -m 'fault or scale' -p no:cacheprovider --timeout=0 $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check bwc tests bench
	$(VENV)/bin/ruff format --check bwc tests bench
	$(VENV)/bin/mypy --strict
	$(VENV)/bin/lint-imports

bench: setup postgres
	$(PY) bench/ingest.py
	$(PY) bench/dock.py
	$(PY) bench/s3.py
	$(PY) bench/audit.py
	$(PY) bench/verify_py.py
	$(PY) bench/export.py
	$(PY) bench/scale.py --events 10000,1000000
	$(PY) bench/stations.py --seconds 120

# The custody log at city scale: 10 million events on SQLite (about 40 minutes, 7 GB).
bench-city: setup
	$(PY) bench/scale.py --events 10000,10000000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
