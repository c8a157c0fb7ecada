#!/usr/bin/env bash
# Deploys the staging environment of this repository's services.yaml.
# Thin entry point: ordering, waits and retries live in codex-bootstrap.
# Extra arguments go to reconcile (e.g. --dry-run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if command -v codex-bootstrap >/dev/null 2>&1; then
	exec codex-bootstrap reconcile --env staging "$@"
fi
exec go run ./cmd/codex-bootstrap reconcile --env staging "$@"
