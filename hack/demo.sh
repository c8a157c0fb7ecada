#!/usr/bin/env bash
# Brings the local test cluster up if it is not running (the first time this
# builds the control plane from source: 7 to 13 minutes on two cores), then deploys the
# dev environment of examples/new-project into it with codex-bootstrap.
# Extra arguments go to reconcile, e.g. --env staging or --env ai-slot --slot 3.
#
#   hack/demo.sh
#   hack/demo.sh --env ai-slot --slot 7
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
test/cluster/cluster.sh up >&2
kubeconfig="$(test/cluster/cluster.sh kubeconfig | tail -1)"
env=(--env dev)
for arg in "$@"; do
	[[ "$arg" == --env || "$arg" == --env=* ]] && env=()
done
# Built rather than `go run`, which would turn every exit code into 1.
go build -o .cache/bin/codex-bootstrap ./cmd/codex-bootstrap
exec .cache/bin/codex-bootstrap reconcile --config examples/new-project/services.yaml \
	--kubeconfig "$kubeconfig" "${env[@]}" "$@"
