#!/usr/bin/env bash
# Deploys the staging environment of this repository's services.yaml.
# Thin entry point: ordering, waits and retries live in codex-bootstrap.
# Extra arguments go to reconcile (e.g. --dry-run). Operator values come from
# bootstrap/host/config.env or, in CI, from CODEX_VAR_<NAME> variables:
#   CODEX_VAR_CODEXK8S_GITHUB_PAT="$GITHUB_PAT" deploy/scripts/deploy_staging.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if ! command -v codex-bootstrap >/dev/null 2>&1; then
	# Build rather than `go run`, which would turn every exit code into 1.
	go build -o .cache/bin/codex-bootstrap ./cmd/codex-bootstrap
	PATH="$PWD/.cache/bin:$PATH"
fi
exec codex-bootstrap reconcile --env staging "$@"
