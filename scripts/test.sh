#!/usr/bin/env bash
# Sets up everything the test-suite needs on a fresh machine, then runs lint, types and tests.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: Prometheus + promtool and Alertmanager (metrics pipeline tests), Chromium (HTML report check).
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
# Tests start their own Prometheus on free loopback ports; a running Debian service does not get in the way.

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ] && ! "$PY" -m venv .venv; then
  # Debian's own python3 ships venv (ensurepip) separately
  [ "$(id -u)" = 0 ] || { echo "cannot create .venv: install python3-venv" >&2; exit 1; }
  rm -rf .venv
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[demo,test]'

# otelcol-llm, Jaeger v2, VictoriaMetrics and VictoriaLogs from their pinned Go modules (tests/test_stack_e2e.py,
# tests/test_lb_tier.py, tests/test_stores.py). Cached outside the
# checkout by a hash of go.mod/go.sum/sources: a second run builds nothing. A failed build fails here.
go_bins=$(bash scripts/build-go.sh)
export OTELCOL_LLM_BIN JAEGER_BIN
OTELCOL_LLM_BIN=$(sed -n 's/^otelcol-llm=//p' <<<"$go_bins")
JAEGER_BIN=$(sed -n 's/^jaeger=//p' <<<"$go_bins")
export VICTORIA_METRICS_BIN VICTORIA_LOGS_BIN
VICTORIA_METRICS_BIN=$(sed -n "s/^victoria-metrics=//p" <<<"$go_bins")
VICTORIA_LOGS_BIN=$(sed -n "s/^victoria-logs=//p" <<<"$go_bins")

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# The release artefacts: sdist and wheel built, metadata checked, the wheel installed in a fresh venv and run.
bash scripts/wheel-smoke.sh
.venv/bin/python -m pytest "$@"
