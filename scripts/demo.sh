#!/usr/bin/env bash
# The CI-farm walkthrough (`make demo`): builders share one server and build for real.
#  1. Builder A builds examples/ci-farm with `layercache build` in team/main: nothing is cached,
#     every step runs in buildah and its layer goes to the cache.
#  2. Builder B, on another checkout and a fresh buildah storage root: every step comes from the
#     cache, nothing runs, and the image is the same (same manifest digest); it runs.
#  3. Editing a file .dockerignore hides changes nothing.
#  4. Editing internal/greet/greet.sh: the plan misses from `COPY internal/` on.
#  5. A PR builder in team/pr-42 (fallback team/main) builds the edit: main's layers up to the
#     edit, its own builds after, written only to team/pr-42.
#  6. The server checks tokens: CI on main writes team/main, the PR's token reads main but cannot
#     write it, a laptop's token reads, and a request without one is refused.
# Each claim is checked; the script exits non-zero if the cache behaves otherwise.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
layercache="$root/bin/layercache"
[ -x "$layercache" ] || { echo "demo: $layercache is missing; run make build" >&2; exit 1; }
command -v buildah >/dev/null || { echo "demo: buildah is missing; apt-get install buildah (make test installs it)" >&2; exit 1; }
work=$(mktemp -d)
trap '"$root/scripts/server.sh" stop "$work/server"; rm -rf "$work"' EXIT

# The tokens of the farm, made offline; each secret is the last line its create prints.
token() { "$layercache" token create --tokens-file "$work/tokens.json" --name "$1" "${@:2}" | tail -n 1; }
main_token=$(token ci-main --scope write:team/main)
pr_token=$(token ci-pr-42 --scope write:team/pr-42 --scope read:team/main)
laptop_token=$(token laptop --scope 'read:team/*')

ports=$("$root/scripts/server.sh" start "$work/server" --CacheService:Auth:TokensFile="$work/tokens.json")
export CACHESERVICE_ADDR="127.0.0.1:${ports%% *}"
export CACHESERVICE_TOKEN=$main_token
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }
field() { node -e "const p=JSON.parse(require('fs').readFileSync(0,'utf8')); $1" ; }
# The outcome of each step as a letter: b built, c from the cache, - config only.
outcomes() { field 'console.log(p.steps.map(s=>({built:"b",cached:"c",config:"-"})[s.outcome]).join(""))'; }
first_miss() { field 'const m=p.steps.find(s=>s.status==="miss"); console.log(m ? m.instruction : "")'; }
storage() { echo --root "$work/$1/root" --runroot "$work/$1/run" --storage-driver vfs; }

# build BUILDER NS CTX [args...]: layercache build as BUILDER (a buildah storage root of its own),
# tagged demo; the step lines go to the terminal, the JSON result to $work/BUILDER.json.
build() {
  local builder=$1 ns=$2 ctx=$3
  shift 3
  # shellcheck disable=SC2046
  "$layercache" build "$ctx" --namespace "$ns" $(storage "$builder") -t demo --json "$@" >"$work/$builder.json"
  field 'console.log(`${p.cachedSteps} of ${p.cachedSteps+p.builtSteps} layer steps from the cache; built ${p.builtSteps}; ${p.seconds} s in all`)' <"$work/$builder.json"
}
# run BUILDER: runs the image BUILDER built and prints what it says.
run_image() {
  local ctr
  # shellcheck disable=SC2046
  ctr=$(buildah $(storage "$1") from --pull-never demo)
  # shellcheck disable=SC2046
  buildah $(storage "$1") run --isolation chroot "$ctr" -- /app
}

for checkout in a b; do
  cp -r "$root/examples/ci-farm" "$work/$checkout"
  mkdir -p "$work/$checkout/tools" && cp "$(command -v busybox)" "$work/$checkout/tools/busybox"
done

say "1. builder A builds the commit in team/main: nothing cached, every step runs"
build builder-a team/main "$work/a"
[ "$(outcomes <"$work/builder-a.json")" = bbb-bbb-bb- ] || fail "a cold build should run every layer step"
echo "the image says: $(run_image builder-a)"

say "2. builder B, another checkout and a fresh buildah root: every step from the cache"
touch "$work/b"/cmd/app/main.sh # a fresh checkout has other mtimes; they do not count
build builder-b team/main "$work/b"
[ "$(outcomes <"$work/builder-b.json")" = ccc-ccc-cc- ] || fail "builder B should run nothing"
digest_a=$(field 'console.log(p.manifestDigest)' <"$work/builder-a.json")
digest_b=$(field 'console.log(p.manifestDigest)' <"$work/builder-b.json")
[ "$digest_a" = "$digest_b" ] || fail "builder B's image ($digest_b) should be builder A's ($digest_a)"
echo "the same image: $digest_b"
[ "$(run_image builder-b)" = "hello, CI farm dev" ] || fail "builder B's image should run"

say "3. builder B edits the README and a test file (.dockerignore hides both): still all cached"
echo "More docs." >>"$work/b/README.md"
echo "# more tests" >>"$work/b/internal/greet/greet_test.sh"
"$layercache" plan --context "$work/b" --namespace team/main
json=$("$layercache" plan --context "$work/b" --namespace team/main --json)
[ "$(field 'console.log(p.cachedSteps === p.steps.length)' <<<"$json")" = true ] || fail "edits to ignored files must not change keys"

say "4. builder B edits internal/greet/greet.sh: the plan misses from COPY internal/ on"
sed -i 's/hello, /hi, /' "$work/b/internal/greet/greet.sh"
json=$("$layercache" plan --context "$work/b" --namespace team/main --json)
"$layercache" plan --context "$work/b" --namespace team/main
[ "$(first_miss <<<"$json")" = "COPY internal/ ./internal/" ] || fail "the first miss should be COPY internal/"

say "5. a PR builder in team/pr-42 (fallback team/main) builds the edit on a fresh root, with its own token"
CACHESERVICE_TOKEN=$pr_token build builder-pr team/pr-42 "$work/b" --fallback-namespace team/main
[ "$(outcomes <"$work/builder-pr.json")" = ccc-ccb-bb- ] || fail "the PR build should run exactly the steps from COPY internal/ on"
[ "$(run_image builder-pr)" = "hi, CI farm dev" ] || fail "the PR's image should say hi"
json=$("$layercache" plan --context "$work/b" --namespace team/main --json)
[ "$(first_miss <<<"$json")" = "COPY internal/ ./internal/" ] || fail "team/main must not see the PR's layers"
echo "team/main still misses at COPY internal/: the PR wrote only to team/pr-42"

say "history of the PR build, newest step first"
CACHESERVICE_TOKEN=$pr_token "$layercache" history --context "$work/b" --namespace team/pr-42 --fallback-namespace team/main

say "6. tokens: the PR's cannot write team/main, a laptop's reads, none is refused"
key=$(field 'console.log(p.steps.find(s=>s.key).key)' <"$work/builder-a.json")
if out=$(CACHESERVICE_TOKEN=$pr_token "$layercache" delete --namespace team/main --key "$key" 2>&1); then fail "the PR token deleted from team/main"; fi
echo "$out"
grep -q "lacks scope write:team/main" <<<"$out" || fail "the refusal should name the scope"
CACHESERVICE_TOKEN=$laptop_token "$layercache" plan --context "$work/a" --namespace team/main >/dev/null || fail "a laptop's token should read"
if out=$(CACHESERVICE_TOKEN='' "$layercache" stats --namespace team/main 2>&1); then fail "a request without a token was served"; fi
echo "$out"

say "hit rates (a laptop's token reads every team namespace)"
CACHESERVICE_TOKEN=$laptop_token "$layercache" stats --namespace team/main
CACHESERVICE_TOKEN=$laptop_token "$layercache" stats --namespace team/pr-42
say "demo passed"
