{{- /*
Shell helpers for the bootstrap step scripts (bootstrap/remote/*.sh). Steps
are rendered with the same context as manifests but without .Service.
Order, retries and prompts live in codex-bootstrap; a step only brings the
host to one state, idempotently.
*/ -}}

{{- /* (dict "ctx" . "step" NAME) */ -}}
{{- define "codex.sh.prelude" -}}
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
umask 022

STEP={{ .step | quote }}
# install prefixes every line of a step's output with the step's name.
log() { printf '%s\n' "$*" >&2; }
die() { log "error in step $STEP: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (codex-bootstrap runs steps through sudo for a non-root SSH user)"

# write_file PATH MODE < CONTENT: installs CONTENT at PATH only when it differs,
# and sets WROTE=1 when it did, so callers restart a service only on change.
WROTE=0
# shellcheck disable=SC2034 # WROTE is read only by steps that restart on change
write_file() {
	local path=$1 mode=$2 tmp
	tmp=$(mktemp)
	cat >"$tmp"
	if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
		rm -f "$tmp"
		WROTE=0
		return 0
	fi
	install -D -m "$mode" "$tmp" "$path"
	rm -f "$tmp"
	WROTE=1
	log "wrote $path"
}
{{- end }}
