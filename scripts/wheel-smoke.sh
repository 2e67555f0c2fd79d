#!/usr/bin/env bash
# Release check: builds the sdist and the wheel (the wheel from the sdist), checks that their metadata
# renders, that they hold every package file plus LICENSE, NOTICE and py.typed, then installs the wheel
# (not editable, with the demo extra) in a fresh venv and runs it from there, away from the checkout:
# `otel-llm demo` for 2 s of traffic, and `opentelemetry-instrument` on tests/apps/wheel_smoke_app.py with
# the console exporters, whose spans and metrics must come out.
# Usage: bash scripts/wheel-smoke.sh   (PYTHON: the interpreter to build with; default .venv/bin/python.
# build, twine, hatchling and uv are installed into it: `--no-isolation` saves a build venv per run, and
# uv installs the wheel's dependencies in seconds where pip takes a minute or more.)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
PY=${PYTHON:-.venv/bin/python}
start=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/otel-llm-wheel.XXXXXX")
demo_pid=
trap '[ -z "$demo_pid" ] || kill "$demo_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
fail() {
  echo "wheel-smoke: $1" >&2
  shift
  for log in "$@"; do
    echo "----- ${log#"$work"/} (last 40 lines)" >&2
    tail -n 40 "$log" >&2
  done
  exit 1
}

"$PY" -m pip install -q "build>=1.2,<2" "twine>=6.1,<8" "hatchling>=1.27,<2" "uv>=0.5,<1"
"$PY" -m build --no-isolation --outdir "$work/dist" . >"$work/build.log" 2>&1 || fail "python -m build failed" "$work/build.log"
"$PY" -m twine --no-color check --strict "$work/dist"/*
sdist=$(echo "$work"/dist/*.tar.gz)
wheel=$(echo "$work"/dist/*.whl)

# Every file of the package in the checkout must be in the sdist and in the wheel (a file a build setting
# leaves out fails here, by name, even if no smoke run below happens to load it).
git ls-files src/otel_llm >"$work/sources" 2>/dev/null || true
if [ ! -s "$work/sources" ]; then # not a git checkout (an unpacked sdist)
  find src/otel_llm -type f ! -path '*/__pycache__/*' ! -name '*.pyc' >"$work/sources"
fi
"$PY" - "$sdist" "$wheel" "$work/sources" <<'EOF'
import sys
import tarfile
import zipfile

sdist, wheel, sources = sys.argv[1:]
package = {line.strip().removeprefix("src/") for line in open(sources) if line.strip()}
with tarfile.open(sdist) as tar:
    in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
with zipfile.ZipFile(wheel) as whl:
    in_wheel = set(whl.namelist())
dist_info = next(name.split("/")[0] for name in in_wheel if name.split("/")[0].endswith(".dist-info"))
problems = [f"sdist lacks {name}" for name in sorted(({"LICENSE", "NOTICE"} | {"src/" + p for p in package}) - in_sdist)]
problems += [f"wheel lacks {name}" for name in sorted(package - in_wheel)]
problems += [
    f"wheel lacks {name}"
    for name in (f"{dist_info}/licenses/LICENSE", f"{dist_info}/licenses/NOTICE", "otel_llm/py.typed")
    if name not in in_wheel
]
if problems:
    sys.exit("wheel-smoke: " + "; ".join(problems))
print(f"wheel-smoke: {len(package)} package files, LICENSE, NOTICE and py.typed in the sdist and the wheel")
EOF

# A fresh venv with nothing of the checkout, filled from PyPI (uv's cache on a second run).
"$PY" -m venv --without-pip "$work/venv"
"$PY" -m uv pip install -q --python "$work/venv/bin/python" "$wheel[demo]" opentelemetry-distro \
  >"$work/install.log" 2>&1 || fail "installing the wheel failed" "$work/install.log"
cp tests/apps/wheel_smoke_app.py "$work/app.py"
cd "$work"
unset PYTHONPATH PYTHONHOME
for name in $(env | sed -n 's/^\(OTEL_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$name"; done

# The demo (about 10 s: the provider answers with realistic latencies) and the instrumented app side by side.
venv/bin/otel-llm demo --duration 2 --rate 8 --error-rate 0 --seed 7 --metrics-port 0 --html demo.html \
  >demo.log 2>&1 &
demo_pid=$!
OTEL_SERVICE_NAME=wheel-smoke OTEL_TRACES_EXPORTER=console OTEL_METRICS_EXPORTER=console OTEL_LOGS_EXPORTER=none \
  venv/bin/opentelemetry-instrument venv/bin/python app.py >app.log 2>&1 || fail "the instrumented app failed" app.log
demo_rc=0
wait "$demo_pid" || demo_rc=$?
demo_pid=

grep -q "^otel_llm from: $work/venv/" app.log || fail "the app did not import otel_llm from the wheel's venv" app.log
for want in '"name": "chat gpt-4.1"' '"name": "embeddings text-embedding-3-small"' '"gen_ai.usage.input_tokens": ' \
  '"name": "gen_ai.client.token.usage"' '"name": "gen_ai.client.operation.cost"'; do
  grep -qF "$want" app.log || fail "no $want in the console telemetry of opentelemetry-instrument" app.log
done
[ "$demo_rc" = 0 ] || fail "otel-llm demo exited $demo_rc" demo.log
# 2 s at 8/s: 16 logical calls; one LLM span per attempt (a call fails over to another model on an injected
# fault), and the table's requests, read back from the instrumentation's metrics, count the same attempts.
read -r calls spans failovers < <(sed -nE 's/^([0-9]+) logical calls · ([0-9]+) spans · ([0-9]+) failovers.*/\1 \2 \3/p' \
  demo.log) || fail "no call count in the demo's output" demo.log
requests=$(awk -F'│|[|]' '$2 ~ /^ +[a-z0-9.-]+ +$/ && $4 ~ /^ +[0-9,]+ +$/ { gsub(/[ ,]/, "", $4); n += $4 }
  END { print n + 0 }' demo.log)
[ "$calls" = 16 ] && [ "$spans" = $((calls + failovers)) ] && [ "$requests" = "$spans" ] ||
  fail "demo: $calls calls, $spans spans, $failovers failovers, $requests requests in its table" demo.log
grep -q "<table" demo.html || fail "the demo wrote no HTML report" demo.log

cd "$root"
echo "wheel-smoke: $(basename "$wheel") installed in a fresh venv and run: opentelemetry-instrument's spans and" \
  "metrics came out; the demo made $calls calls, $spans spans = $requests requests in its table; $((SECONDS - start)) s"
