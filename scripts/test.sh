#!/usr/bin/env bash
# Runs every test project and the end-to-end test, then prints one closing line
# "N passed, N failed" summed over all of them. Exits non-zero on any failure, and counts a
# project that did not report (e.g. it failed to build) as a failure. Every failure says why in
# this output: a failed project's whole runner output (each failed test with its message and
# stack trace) is printed, and each project's TRX results stay in test-artifacts/results/.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(mktemp -d)
trap 'scripts/server.sh stop "$out/e2e"; rm -rf "$out"' EXIT
passed=0 failed=0
results="$root/test-artifacts/results"
rm -rf "$results"
mkdir -p "$results"

for project in tests/*.Tests/*.csproj; do
  name=$(basename "$project" .csproj)
  echo "== $name"
  dotnet test "$project" -c Release --no-build --logger "trx;LogFileName=$name.trx" --results-directory "$results" >"$out/$name.log" 2>&1
  summary=$(grep -E '(Passed|Failed)! +- Failed: +[0-9]+, Passed: +[0-9]+' "$out/$name.log" | tail -n 1)
  if [ -z "$summary" ] || grep -qE '^Failed!' <<<"$summary"; then
    cat "$out/$name.log" # the failed tests with their messages, or why the runner reported nothing
  else
    echo "$summary"
  fi
  if [ -z "$summary" ]; then
    echo "$name: no test summary (build or runner failure); its output is above" >&2
    failed=$((failed + 1))
    continue
  fi
  f=$(sed -E 's/.*Failed: +([0-9]+),.*/\1/' <<<"$summary")
  p=$(sed -E 's/.*Passed: +([0-9]+),.*/\1/' <<<"$summary")
  passed=$((passed + p)) failed=$((failed + f))
done

echo "== lint (dotnet format, buf lint)"
if make --no-print-directory lint; then passed=$((passed + 1)); else echo "lint failed" >&2; failed=$((failed + 1)); fi

echo "== end-to-end (independent Node.js gRPC client and the built layercache CLI against the built server)"
if ports=$(scripts/server.sh start "$out/e2e"); then
  CACHESERVICE_ADDR="127.0.0.1:${ports%% *}" node --test \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$out/e2e.tap" tests/e2e/*.test.mjs </dev/null
  p=$(grep -E '^# pass [0-9]+$' "$out/e2e.tap" | grep -oE '[0-9]+')
  f=$(grep -E '^# fail [0-9]+$' "$out/e2e.tap" | grep -oE '[0-9]+')
  if [ -z "$p" ] || [ -z "$f" ]; then echo "end-to-end: no test summary" >&2; failed=$((failed + 1)); else passed=$((passed + p)) failed=$((failed + f)); fi
else
  failed=$((failed + 1))
fi

echo "== demo (make demo: the CI-farm walkthrough checks its own claims)"
if scripts/demo.sh >"$out/demo.log" 2>&1; then passed=$((passed + 1)); else cat "$out/demo.log" >&2; failed=$((failed + 1)); fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
