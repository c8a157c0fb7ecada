#!/usr/bin/env bash
# Render benchmark (issue 2): codex-bootstrap against `helm template` on the
# same templates, as whole processes, in one run.
#
#   bench/render/run.sh [N...]        N: stack sizes (default: 100 1000 5000)
#
# For each N it generates a synthetic stack and its equivalent Helm chart
# (bench/render/gen), then times, REPS times each and interleaved:
#   codex-bootstrap validate --config STACK/services.yaml --env dev
#       load + validate services.yaml, parse the partials, render every
#       manifest of dev, build dev's plan; prints a one-line summary
#   codex-bootstrap reconcile --config STACK/services.yaml --env dev --dry-run -o json
#       the same, and prints the plan as JSON (to /dev/null)
#   helm template bench CHART -f CHART/values-dev.yaml --namespace bench-dev
#       load the chart, render every template for dev, sort and print the
#       manifests (to /dev/null)
# and prints a markdown table of the best (lowest) wall and CPU times: the
# machine is shared, and the best of several runs is the least disturbed one. One environment against one
# release: `validate` without --env would render all four environments.
#
# Before timing, it checks that the two sides are equivalent: helm template
# must print the same objects, field for field, as the plan of dev and prod
# (TestChartMatchesStack, N=40). BENCH_CHECK=0 skips that.
#
# Environment:
#   REPS              repetitions per command and N (default 5; the best is reported)
#   BENCH_CHECK       1 (default) runs the equivalence test first; 0 skips it
#   BENCH_WORK        where stacks and charts are generated (default: a temp
#                     directory, removed at exit); never inside the repository
#   CODEX_CACHE_DIR   cache root (default: $HOME/.cache/codex-bootstrap); binaries
#                     go to $CODEX_CACHE_DIR/bench/bin
#
# Nothing here asserts on time: it measures and prints.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE_ROOT="${CODEX_CACHE_DIR:-$HOME/.cache/codex-bootstrap}"
BIN_DIR="$CACHE_ROOT/bench/bin"
REPS="${REPS:-5}"
SIZES=("$@")
if [[ ${#SIZES[@]} -eq 0 ]]; then
	SIZES=(100 1000 5000)
fi
for n in "${SIZES[@]}" "$REPS"; do
	if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
		echo "run.sh: not a positive number: $n" >&2
		exit 2
	fi
done

log() { printf 'bench: %s\n' "$*" >&2; }

if [[ -n "${BENCH_WORK:-}" ]]; then
	WORK="$BENCH_WORK"
	mkdir -p "$WORK"
else
	WORK="$(mktemp -d "${TMPDIR:-/tmp}/codex-render-bench.XXXXXX")"
	trap 'rm -rf "$WORK"' EXIT
fi

# Binaries: ours from the work tree, helm from its tools module (cached).
mkdir -p "$BIN_DIR"
cd "$REPO"
log "building codex-bootstrap and the generator"
go build -o "$BIN_DIR/codex-bootstrap" ./cmd/codex-bootstrap
go build -o "$BIN_DIR/bench-gen" ./bench/render/gen
HELM="$(BENCH_BIN_DIR="$BIN_DIR" "$REPO/tools/helm/build.sh")"
OURS="$BIN_DIR/codex-bootstrap"

# helm reads and may write its config, cache and data homes, and a
# kubeconfig: keep all of them inside the work directory.
export HELM_CONFIG_HOME="$WORK/helm/config" HELM_CACHE_HOME="$WORK/helm/cache" HELM_DATA_HOME="$WORK/helm/data"
export KUBECONFIG="$WORK/helm/kubeconfig"

if [[ "${BENCH_CHECK:-1}" != 0 ]]; then
	log "checking that the chart renders the same objects as the stack"
	CODEX_BENCH_HELM="$HELM" go test -count=1 -run 'TestSyntheticStackIsValid|TestChartMatchesStack' ./bench/render/ >&2
fi

# timed CMD... -> prints "WALL CPU" in seconds; stdout of CMD is discarded and
# a failure stops the benchmark with the command's stderr.
timed() {
	local t err="$WORK/stderr" TIMEFORMAT='%3R %3U %3S'
	if ! t="$( { time "$@" >/dev/null 2>"$err"; } 2>&1 )"; then
		cat "$err" >&2
		echo "run.sh: failed: $*" >&2
		exit 1
	fi
	awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' <<<"$t"
}

# best FILE COLUMN -> the lowest value of that column
best() {
	sort -g -k"$2","$2" "$1" | awk -v c="$2" 'NR == 1 { print $c }'
}

rows=()
for n in "${SIZES[@]}"; do
	dir="$WORK/n$n"
	rm -rf "$dir"
	log "N=$n: generating into $dir"
	"$BIN_DIR/bench-gen" -n "$n" -out "$dir"
	stack="$dir/stack/services.yaml" chart="$dir/chart"
	validate=("$OURS" validate --config "$stack" --env dev)
	reconcile=("$OURS" reconcile --config "$stack" --env dev --dry-run -o json)
	helm=("$HELM" template bench "$chart" -f "$chart/values-dev.yaml" --namespace bench-dev)
	objects="$("${helm[@]}" | grep -c '^kind:')"

	# One untimed run each warms the page cache; then REPS interleaved rounds.
	timed "${validate[@]}" >/dev/null
	timed "${reconcile[@]}" >/dev/null
	timed "${helm[@]}" >/dev/null
	: >"$dir/validate.t"
	: >"$dir/reconcile.t"
	: >"$dir/helm.t"
	for ((i = 1; i <= REPS; i++)); do
		log "N=$n: round $i/$REPS"
		timed "${validate[@]}" >>"$dir/validate.t"
		timed "${reconcile[@]}" >>"$dir/reconcile.t"
		timed "${helm[@]}" >>"$dir/helm.t"
	done
	v="$(best "$dir/validate.t" 1)" vc="$(best "$dir/validate.t" 2)"
	r="$(best "$dir/reconcile.t" 1)"
	h="$(best "$dir/helm.t" 1)" hc="$(best "$dir/helm.t" 2)"
	rows+=("$(awk -v n="$n" -v o="$objects" -v v="$v" -v vc="$vc" -v r="$r" -v h="$h" -v hc="$hc" 'BEGIN {
		printf "| %d | %d | %.3f (%.3f) | %.3f | %.3f (%.3f) | **%.1fx** | %.1fx | %.1fx | %.0f | %.0f |\n",
			n, o, v, vc, r, h, hc, h / v, h / r, hc / vc, v * 1e6 / n, h * 1e6 / n }')")
done

echo
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(go env GOVERSION), $("$HELM" version --template '{{ .Version }}') built from helm.sh/helm/v3; best of $REPS runs; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| N | objects | validate s (CPU s) | reconcile --dry-run -o json s | helm template s (CPU s) | helm / validate | helm / reconcile | helm / validate, CPU | validate µs/service | helm µs/service |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
