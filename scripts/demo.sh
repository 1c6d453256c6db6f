#!/usr/bin/env bash
# The CI-farm walkthrough (`make demo`): two builders share one server.
#  1. Builder A plans examples/ci-farm in team/main: nothing is cached. It builds the missing
#     steps one at a time (a real tar of the selected files for COPY, a stand-in tar for RUN,
#     since no container engine runs here), pushes each layer and plans again.
#  2. Builder B, on another checkout of the same commit: every step is CACHED; it pulls a layer.
#  3. Editing a file .dockerignore hides, or one no COPY selects, changes nothing.
#  4. Editing internal/greet/greet.go: only the steps from `COPY internal/` on miss.
#  5. A PR namespace that reads team/main as fallback gets main's hits and writes only to itself.
# Each claim is checked; the script exits non-zero if the cache behaves otherwise.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
layercache="$root/bin/layercache"
[ -x "$layercache" ] || { echo "demo: $layercache is missing; run make build" >&2; exit 1; }
work=$(mktemp -d)
trap '"$root/scripts/server.sh" stop "$work/server"; rm -rf "$work"' EXIT

ports=$("$root/scripts/server.sh" start "$work/server")
export CACHESERVICE_ADDR="127.0.0.1:${ports%% *}"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }

# plan NS CTX [args...] -> the plan as JSON; the human-readable plan goes to the terminal too.
plan() {
  local ns=$1 ctx=$2
  shift 2
  "$layercache" plan --context "$ctx" --namespace "$ns" "$@" >&2
  "$layercache" plan --context "$ctx" --namespace "$ns" "$@" --json 2>/dev/null
}
field() { node -e "const p=JSON.parse(require('fs').readFileSync(0,'utf8')); $1" ; }
cached() { field 'console.log(p.cachedSteps)'; }
total() { field 'console.log(p.steps.length)'; }
first_miss() { field 'const m=p.steps.find(s=>s.status==="miss"); console.log(m ? m.instruction : "")'; }

# layer CTX INSTRUCTION KEY OUT: what building the step would produce.
layer() {
  local ctx=$1 instruction=$2 key=$3 out=$4
  local -a words
  read -r -a words <<<"$instruction"
  if [ "${words[0]}" = COPY ] && [[ $instruction != *--from=* ]]; then
    grep -v '^#' "$ctx/.dockerignore" >"$work/exclude"
    tar -C "$ctx" --exclude-from="$work/exclude" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
      -cf "$out.tar" "${words[@]:1:${#words[@]}-2}"
  else
    rm -rf "$work/standin" && mkdir -p "$work/standin"
    printf 'stand-in output of: %s\nkey: %s\n' "$instruction" "$key" >"$work/standin/layer.txt"
    tar -C "$work/standin" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$out.tar" layer.txt
  fi
  gzip -nf "$out.tar" && mv "$out.tar.gz" "$out"
}

# build NS CTX [args...]: plan, build the first miss, push it, until nothing misses.
build() {
  local ns=$1 ctx=$2 json miss key instruction pushed=0
  shift 2
  while json=$("$layercache" plan --context "$ctx" --namespace "$ns" "$@" --json 2>/dev/null); do
    miss=$(field 'const m=p.steps.find(s=>s.status==="miss"); if (m) console.log(m.key + "\t" + m.instruction)' <<<"$json")
    [ -n "$miss" ] || break
    key=${miss%%$'\t'*} instruction=${miss#*$'\t'}
    echo "building: $instruction"
    layer "$ctx" "$instruction" "$key" "$work/layer"
    "$layercache" push --namespace "$ns" --key "$key" --layer "$work/layer" >/dev/null
    pushed=$((pushed + 1))
  done
  echo "pushed $pushed layers to $ns"
}

cp -r "$root/examples/ci-farm" "$work/a"
cp -r "$root/examples/ci-farm" "$work/b"

say "1. builder A plans the commit in team/main: nothing cached"
json=$(plan team/main "$work/a")
[ "$(cached <<<"$json")" = 0 ] || fail "a fresh cache reported cached steps"
steps=$(total <<<"$json")
build team/main "$work/a"

say "2. builder B plans the same commit on another checkout: all $steps steps CACHED"
touch "$work/b"/cmd/app/main.go # a fresh checkout has other mtimes; they do not count
json=$(plan team/main "$work/b")
[ "$(cached <<<"$json")" = "$steps" ] || fail "builder B should find all $steps steps cached"
digest=$(field 'console.log(p.steps.filter(s=>s.layer).at(-1).layer.digest)' <<<"$json")
"$layercache" pull --namespace team/main --digest "$digest" -o "$work/last-layer.tar.gz"

say "3. builder B edits the README and a test file (.dockerignore hides both): still all CACHED"
echo "More docs." >>"$work/b/README.md"
echo "// more tests" >>"$work/b/internal/greet/greet_test.go"
json=$(plan team/main "$work/b")
[ "$(cached <<<"$json")" = "$steps" ] || fail "edits to ignored files must not change keys"

say "4. builder B edits internal/greet/greet.go: the steps from COPY internal/ on miss"
sed -i 's/hello, /hi, /' "$work/b/internal/greet/greet.go"
json=$(plan team/main "$work/b")
[ "$(first_miss <<<"$json")" = "COPY internal/ ./internal/" ] || fail "the first miss should be COPY internal/"
[ "$(cached <<<"$json")" = 4 ] || fail "the four steps before COPY internal/ should stay cached"

say "5. a PR builder in team/pr-42 (fallback team/main) builds the edit: main's hits, its own writes"
build team/pr-42 "$work/b" --fallback-namespace team/main
json=$(plan team/pr-42 "$work/b" --fallback-namespace team/main)
[ "$(cached <<<"$json")" = "$steps" ] || fail "the PR namespace should now have every step"
json=$(plan team/main "$work/b")
[ "$(first_miss <<<"$json")" = "COPY internal/ ./internal/" ] || fail "team/main must not see the PR's layers"
echo "team/main still misses at COPY internal/: the PR wrote only to team/pr-42"

say "history of the PR build, newest step first"
"$layercache" history --context "$work/b" --namespace team/pr-42 --fallback-namespace team/main

say "hit rates"
"$layercache" stats --namespace team/main
"$layercache" stats --namespace team/pr-42
say "demo passed"
