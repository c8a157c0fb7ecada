#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 for tests and demos, built here
# from upstream sources (see tools/build.sh): etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok (simulated nodes and pods).
# The shared cluster also has one real node (containerd, kubelet, kube-proxy,
# CoreDNS; see realnode.sh) that runs real containers of images built here.
#
#   test/cluster/cluster.sh up                 build what is missing, start, wait until ready
#   test/cluster/cluster.sh down [--purge]     stop everything this script started, remove
#                                              state (--purge: logs too)
#   test/cluster/cluster.sh status             components, API health, nodes
#   test/cluster/cluster.sh kubeconfig         absolute path of the kubeconfig (last stdout line)
#   test/cluster/cluster.sh restart COMPONENT  stop and start one component (fault tests)
#   test/cluster/cluster.sh build              only build the binaries
#
# The components are started here, one by one, rather than through kwokctl:
# restarting a single component (kwokctl cannot), the exact flags (kwokctl
# turns admission plugins off and binds 0.0.0.0 by default), never touching
# ~/.kube/config and never downloading anything are then properties of this
# file instead of defaults to override.
#
# Environment:
#   CODEX_CACHE_DIR        cache root (default: $HOME/.cache/codex-bootstrap);
#                          binaries, Go build cache, state and logs live in
#                          $CODEX_CACHE_DIR/cluster
#   CLUSTER_NAME           another, independent cluster of that name (state,
#                          logs and ports of its own) next to the shared one,
#                          e.g. for a test that breaks its cluster on purpose
#   CLUSTER_NODES          number of simulated nodes (default: 3; at `up`)
#   CLUSTER_PORT_BASE      first of the 6 loopback ports used (at the first
#                          `up`; default: 16440, or the first free range from
#                          16500 up for a named cluster)
#   CLUSTER_START_TIMEOUT  seconds to wait for each component (default: 120)
#   CLUSTER_REAL_NODE      0: the shared cluster without its real node
#                          (simulated nodes only; no root needed)
#   CLUSTER_DEV_IMAGES     0: the real node without the (large) dev images
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLUSTER_DIR="$REPO_ROOT/test/cluster"
CACHE_ROOT="${CODEX_CACHE_DIR:-$HOME/.cache/codex-bootstrap}/cluster"
BIN_DIR="$CACHE_ROOT/bin"
SHARE_DIR="$CACHE_ROOT/share"
CLUSTER_NAME="${CLUSTER_NAME:-}"
if [[ -z "$CLUSTER_NAME" ]]; then
	INSTANCE_DIR="$CACHE_ROOT"
elif [[ "$CLUSTER_NAME" =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]]; then
	INSTANCE_DIR="$CACHE_ROOT/instances/$CLUSTER_NAME"
else
	echo "cluster: CLUSTER_NAME must be lowercase letters, digits and '-' (got '$CLUSTER_NAME')" >&2
	exit 2
fi
LOG_DIR="$INSTANCE_DIR/logs"
STATE_DIR="$INSTANCE_DIR/state"
PKI="$STATE_DIR/pki"
PID_DIR="$STATE_DIR/pids"
KUBECONFIG_FILE="$STATE_DIR/kubeconfig"
LOCK_FILE="$INSTANCE_DIR/cluster.lock"

# Start order; stopped in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
# Only the shared cluster has the real node: two kubelets on one machine
# would fight over the kubepods cgroups.
REAL_NODE=0
if [[ -z "$CLUSTER_NAME" && "${CLUSTER_REAL_NODE:-1}" != 0 ]]; then
	REAL_NODE=1
	COMPONENTS+=(containerd kubelet kube-proxy coredns localpv)
fi
# Loopback ports of a cluster: 6 for the control plane and kwok, 7 more for
# the real node.
PORT_COUNT=6
((REAL_NODE == 0)) || PORT_COUNT=13

START_TIMEOUT="${CLUSTER_START_TIMEOUT:-120}"
# Simulated pods get IPs from this range. They are data only: nothing ever
# dials them (there is no kube-proxy and no real container).
POD_CIDR=10.244.0.1/16
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1
# shellcheck source=realnode.sh
source "$CLUSTER_DIR/realnode.sh"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# --- state ----------------------------------------------------------------

# Ports are chosen once, when the state is created, and kept in the state
# (the kubeconfig has the API server's port in it).
load_ports() {
	if [[ -f "$STATE_DIR/ports.env" ]]; then
		# shellcheck source=/dev/null
		source "$STATE_DIR/ports.env"
		# A cluster made before it had a real node gets the node's ports now.
		if ((REAL_NODE)) && [[ -z "${KUBELET_PORT:-}" ]]; then
			[[ "$(free_port_base "$((ETCD_PORT + 6))" 1 7)" == "$((ETCD_PORT + 6))" ]] ||
				die "ports $((ETCD_PORT + 6))-$((ETCD_PORT + 12)) for the real node are taken; run: $0 down, then up"
			node_ports "$ETCD_PORT"
			save_ports
		fi
		return
	fi
	local base="${CLUSTER_PORT_BASE:-}"
	# The shared cluster's default base is checked like an explicit one:
	# otherwise a component's health check could pass against another
	# cluster already listening there (e.g. one of another CODEX_CACHE_DIR).
	[[ -n "$base" || -n "$CLUSTER_NAME" ]] || base=16440
	if [[ -z "$base" ]]; then
		base="$(free_port_base 16500)"
		[[ "$base" != none ]] || die "no 6 free loopback ports from 16500 to 17500"
	elif [[ "$(free_port_base "$base" 1)" != "$base" ]]; then
		die "ports $base-$((base + PORT_COUNT - 1)) are taken (by another cluster here, or in use); choose another CLUSTER_PORT_BASE"
	fi
	ETCD_PORT=$((base + 0))
	ETCD_PEER_PORT=$((base + 1))
	APISERVER_PORT=$((base + 2))
	KCM_PORT=$((base + 3))
	SCHEDULER_PORT=$((base + 4))
	KWOK_PORT=$((base + 5))
	((REAL_NODE == 0)) || node_ports "$base"
}

node_ports() {
	KUBELET_PORT=$(($1 + 6))
	KUBELET_HEALTHZ_PORT=$(($1 + 7))
	KUBE_PROXY_PORT=$(($1 + 8))
	KUBE_PROXY_METRICS_PORT=$(($1 + 9))
	COREDNS_PORT=$(($1 + 10))
	COREDNS_READY_PORT=$(($1 + 11))
	LOCALPV_PORT=$(($1 + 12))
}

port_in_use() {
	# Something accepts connections on 127.0.0.1:PORT.
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port_base FROM [TRIES [COUNT]]: the first base (FROM, FROM+10, ...;
# 100 tries) whose COUNT (default: PORT_COUNT) ports are free: nothing
# listens on them and no other cluster here has them.
free_port_base() {
	local base p busy taken count="${3:-$PORT_COUNT}" step=10
	((count <= 10)) || step=20
	taken=" $(cat "$CACHE_ROOT"/state/ports.env "$CACHE_ROOT"/instances/*/state/ports.env 2>/dev/null |
		sed -n 's/^[A-Z_]*_PORT=//p' | tr '\n' ' ') "
	for ((base = $1; base < $1 + step * ${2:-100}; base += step)); do
		busy=0
		for ((p = base; p < base + count; p++)); do
			if [[ "$taken" == *" $p "* ]] || port_in_use "$p"; then
				busy=1
				break
			fi
		done
		if ((!busy)); then
			echo "$base"
			return 0
		fi
	done
	echo none
}

save_ports() {
	cat >"$STATE_DIR/ports.env" <<EOF
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
APISERVER_PORT=$APISERVER_PORT
KCM_PORT=$KCM_PORT
SCHEDULER_PORT=$SCHEDULER_PORT
KWOK_PORT=$KWOK_PORT
EOF
	((REAL_NODE == 0)) || cat >>"$STATE_DIR/ports.env" <<EOF
KUBELET_PORT=$KUBELET_PORT
KUBELET_HEALTHZ_PORT=$KUBELET_HEALTHZ_PORT
KUBE_PROXY_PORT=$KUBE_PROXY_PORT
KUBE_PROXY_METRICS_PORT=$KUBE_PROXY_METRICS_PORT
COREDNS_PORT=$COREDNS_PORT
COREDNS_READY_PORT=$COREDNS_READY_PORT
LOCALPV_PORT=$LOCALPV_PORT
EOF
}

# gen_cert NAME SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
# (P-256 keys: an RSA key takes up to seconds to make on a loaded machine,
# and a cluster has sixteen.)
gen_cert() {
	local name="$1" subj="$2" eku="$3" san="${4:-}"
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$eku"
		[[ -z "$san" ]] || echo "subjectAltName=$san"
	} >"$PKI/$name.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subj" \
		-keyout "$PKI/$name.key" -out "$PKI/$name.csr" 2>/dev/null
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
		-CAcreateserial -days 3650 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
	rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

gen_pki() {
	[[ -f "$PKI/done" ]] && return 0
	command -v openssl >/dev/null || die "openssl is needed to create the cluster's certificates (apt-get install openssl)"
	rm -rf "$PKI"
	mkdir -p "$PKI"
	(
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=codex-bootstrap-test-ca" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
			-keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
		gen_cert kube-apiserver "/CN=kube-apiserver" serverAuth \
			"IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
		gen_cert admin "/O=system:masters/CN=codex-admin" clientAuth
		gen_cert kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
		gen_cert kube-scheduler "/CN=system:kube-scheduler" clientAuth
		# The API server's identity towards aggregated API servers.
		gen_cert front-proxy-client "/CN=front-proxy-client" clientAuth
		# kwok serves the "kubelet" endpoint of every simulated node; the API
		# server verifies it against the CA.
		gen_cert kwok "/CN=kwok" serverAuth,clientAuth "IP:127.0.0.1,DNS:localhost"
		openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
		openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
	)
	touch "$PKI/done"
}

# Certificates added since a cluster's PKI was made: created when missing.
gen_more_pki() {
	(
		umask 077
		# The API server's identity towards kubelets (kwok's and the real
		# node's): logs, exec, port-forward.
		[[ -f "$PKI/kube-apiserver-kubelet-client.crt" ]] ||
			gen_cert kube-apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
		((REAL_NODE == 0)) || realnode_gen_pki
	)
}

# write_kubeconfig FILE USER (certificates are embedded: the file stands alone)
write_kubeconfig() {
	local file="$1" user="$2"
	(
		umask 077
		cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: codex-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$user.crt")
    client-key-data: $(base64 -w0 "$PKI/$user.key")
contexts:
- name: codex-test
  context:
    cluster: codex-test
    user: $user
current-context: codex-test
EOF
	)
}

write_configs() {
	write_kubeconfig "$KUBECONFIG_FILE" admin
	write_kubeconfig "$STATE_DIR/kube-controller-manager.kubeconfig" kube-controller-manager
	write_kubeconfig "$STATE_DIR/kube-scheduler.kubeconfig" kube-scheduler
	write_kubeconfig "$STATE_DIR/kwok.kubeconfig" admin
	cat >"$STATE_DIR/kube-scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $STATE_DIR/kube-scheduler.kubeconfig
  qps: 100
  burst: 200
leaderElection:
  leaderElect: false
EOF
	# kwok reads ~/.kwok/kwok.yaml unless given a config: give it one with
	# no objects, so its built-in defaults apply and the options are the flags
	# below. (A KwokConfiguration in the file would switch those defaults off.)
	echo '# kwok options are flags: see test/cluster/cluster.sh' >"$STATE_DIR/kwok.yaml"
}

# --- components -----------------------------------------------------------

# serving_args NAME PORT -> sets ARGS to the health/metrics endpoint flags
# of the controller-manager and the scheduler: 127.0.0.1 only, requests
# authenticated and authorized by the API server as NAME.
serving_args() {
	ARGS=(
		--bind-address=127.0.0.1
		--secure-port="$2"
		--cert-dir="$PKI/$1-generated"
		--authentication-kubeconfig="$STATE_DIR/$1.kubeconfig"
		--authorization-kubeconfig="$STATE_DIR/$1.kubeconfig"
	)
}

# component_args NAME -> sets ARGS
component_args() {
	case "$1" in
	etcd)
		ARGS=(
			--name=codex-test
			--data-dir="$STATE_DIR/etcd"
			--listen-client-urls="http://127.0.0.1:$ETCD_PORT"
			--advertise-client-urls="http://127.0.0.1:$ETCD_PORT"
			--listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
			--initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
			--initial-cluster="codex-test=http://127.0.0.1:$ETCD_PEER_PORT"
			# A throwaway test store: no fsync (the data survives process
			# restarts, not power loss) keeps writes fast on slow disks.
			--unsafe-no-fsync=true
			--log-level=warn
		)
		;;
	kube-apiserver)
		ARGS=(
			--bind-address=127.0.0.1
			--secure-port="$APISERVER_PORT"
			# The API server advertises 127.0.0.1 and does not publish it as
			# the endpoint of the `kubernetes` Service (loopback endpoints are
			# invalid, and nothing in the cluster runs for real to use it).
			--advertise-address=127.0.0.1
			--endpoint-reconciler-type=none
			--etcd-servers="http://127.0.0.1:$ETCD_PORT"
			--tls-cert-file="$PKI/kube-apiserver.crt"
			--tls-private-key-file="$PKI/kube-apiserver.key"
			--client-ca-file="$PKI/ca.crt"
			# The aggregation layer, configured as kubeadm does, so
			# aggregated APIs work and components find the request-header CA.
			--requestheader-client-ca-file="$PKI/ca.crt"
			--requestheader-allowed-names=front-proxy-client
			--requestheader-username-headers=X-Remote-User
			--requestheader-group-headers=X-Remote-Group
			--requestheader-extra-headers-prefix=X-Remote-Extra-
			--proxy-client-cert-file="$PKI/front-proxy-client.crt"
			--proxy-client-key-file="$PKI/front-proxy-client.key"
			--service-account-issuer=https://kubernetes.default.svc.cluster.local
			--service-account-key-file="$PKI/sa.pub"
			--service-account-signing-key-file="$PKI/sa.key"
			--service-cluster-ip-range="$SERVICE_CIDR"
			# Kubelets act as their node only (Node authorizer and the
			# NodeRestriction admission plugin), as in a real cluster.
			--authorization-mode=Node,RBAC
			--enable-admission-plugins=NodeRestriction
			--allow-privileged=true
			# Logs, exec and port-forward go to kwok on 127.0.0.1 and to the
			# real node's kubelet, over TLS checked against the cluster's CA.
			--kubelet-preferred-address-types=InternalIP
			--kubelet-certificate-authority="$PKI/ca.crt"
			--kubelet-client-certificate="$PKI/kube-apiserver-kubelet-client.crt"
			--kubelet-client-key="$PKI/kube-apiserver-kubelet-client.key"
			--cert-dir="$PKI/kube-apiserver-generated"
		)
		;;
	kube-controller-manager)
		serving_args kube-controller-manager "$KCM_PORT"
		ARGS+=(
			--kubeconfig="$STATE_DIR/kube-controller-manager.kubeconfig"
			# One instance: no leader election, so a restarted
			# controller-manager works at once instead of after the lease.
			--leader-elect=false
			# The default controller set (Deployment, ReplicaSet, Job,
			# StatefulSet, namespace, garbage collector, ...), each with its
			# own service account, as in a real cluster.
			--controllers='*'
			--use-service-account-credentials=true
			--service-account-private-key-file="$PKI/sa.key"
			--root-ca-file="$PKI/ca.crt"
			--cluster-signing-cert-file="$PKI/ca.crt"
			--cluster-signing-key-file="$PKI/ca.key"
			# Dynamic provisioning for the default StorageClass (see
			# manifests/storageclass.yaml): claims bind without a PV pool.
			--enable-hostpath-provisioner=true
			--kube-api-qps=100
			--kube-api-burst=200
		)
		;;
	kube-scheduler)
		serving_args kube-scheduler "$SCHEDULER_PORT"
		# Its client connection (kubeconfig, QPS) and leader election are
		# in the config file.
		ARGS+=(--config="$STATE_DIR/kube-scheduler.yaml")
		;;
	kwok)
		ARGS=(
			--kubeconfig="$STATE_DIR/kwok.kubeconfig"
			--config="$STATE_DIR/kwok.yaml"
			--manage-all-nodes=false
			--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake
			# Simulated nodes are at 127.0.0.1, with kwok serving their
			# "kubelet" port (logs, exec) on it.
			--node-ip=127.0.0.1
			--node-name=localhost
			--node-port="$KWOK_PORT"
			--server-address="127.0.0.1:$KWOK_PORT"
			--tls-cert-file="$PKI/kwok.crt"
			--tls-private-key-file="$PKI/kwok.key"
			--cidr="$POD_CIDR"
			--node-lease-duration-seconds=40
			# Stages come from the API (stages/*.yaml), not from built-in
			# defaults, so more can be applied to a running cluster.
			--enable-crds=Stage
		)
		;;
	containerd) ARGS=(--config "$NODE_DIR/containerd.toml") ;;
	kubelet)
		ARGS=(
			--config="$NODE_DIR/kubelet.yaml"
			--kubeconfig="$NODE_DIR/kubelet.kubeconfig"
			--root-dir="$KUBELET_ROOT"
			--cert-dir="$NODE_DIR/kubelet-pki"
			--hostname-override="$REAL_NODE_NAME"
			--node-ip="$REAL_NODE_IP"
			--node-labels="$REAL_TAINT=true"
		)
		;;
	kube-proxy) ARGS=(--config="$NODE_DIR/kube-proxy.yaml") ;;
	coredns) ARGS=(-conf "$NODE_DIR/Corefile") ;;
	localpv)
		ARGS=(
			-kubeconfig "$NODE_DIR/localpv.kubeconfig"
			-node "$REAL_NODE_NAME"
			-dir "$NODE_DIR/volumes"
			-health "127.0.0.1:$LOCALPV_PORT"
		)
		;;
	*) die "unknown component '$1' (want one of: ${COMPONENTS[*]})" ;;
	esac
}

# component_bin NAME: the program of a component (containerd is Debian's).
component_bin() {
	case "$1" in
	containerd) command -v containerd || echo /usr/bin/containerd ;;
	*) echo "$BIN_DIR/$1" ;;
	esac
}

# proc_arg0 PID: the first word of the process's command line. (No pipe
# through `head`: under pipefail its early exit would fail the read.)
proc_arg0() {
	local arg0
	IFS= read -r -d '' arg0 2>/dev/null <"/proc/$1/cmdline" || return 1
	[[ -n "$arg0" ]] && echo "$arg0"
}

# component_pid NAME: prints the pid and succeeds when NAME runs from the pid
# file, and it is really our binary (pid files can outlive their process).
component_pid() {
	local f="$PID_DIR/$1.pid" pid arg0
	[[ -f "$f" ]] || return 1
	pid="$(<"$f")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	arg0="$(proc_arg0 "$pid")" || return 1
	[[ "$arg0" == "$(component_bin "$1")" ]] || return 1
	echo "$pid"
}

# same_args PID: the process runs with exactly the arguments in ARGS.
same_args() {
	local want have
	want="$(printf '%s\n' "${ARGS[@]}")"
	have="$({ tr '\0' '\n' <"/proc/$1/cmdline"; } 2>/dev/null | tail -n +2)" || return 1
	[[ "$want" == "$have" ]]
}

health_url() {
	case "$1" in
	etcd) echo "http://127.0.0.1:$ETCD_PORT/health" ;;
	kube-apiserver) echo "https://127.0.0.1:$APISERVER_PORT/readyz" ;;
	kube-controller-manager) echo "https://127.0.0.1:$KCM_PORT/healthz" ;;
	kube-scheduler) echo "https://127.0.0.1:$SCHEDULER_PORT/healthz" ;;
	kwok) echo "http://127.0.0.1:$KWOK_PORT/healthz" ;;
	containerd) echo "unix://$CONTAINERD_SOCK" ;;
	kubelet) echo "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" ;;
	kube-proxy) echo "http://127.0.0.1:$KUBE_PROXY_PORT/livez" ;;
	coredns) echo "http://127.0.0.1:$COREDNS_READY_PORT/ready" ;;
	localpv) echo "http://127.0.0.1:$LOCALPV_PORT/healthz" ;;
	esac
}

healthy() {
	local out
	case "$1" in
	etcd)
		out="$(curl -fsS --max-time 2 "$(health_url etcd)" 2>/dev/null)" || return 1
		[[ "$out" == *'"health":"true"'* ]]
		;;
	kube-apiserver)
		curl -fsS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
			"$(health_url kube-apiserver)" >/dev/null 2>&1
		;;
	containerd) timeout 5 ctr -a "$CONTAINERD_SOCK" version >/dev/null 2>&1 ;;
	kubelet | kube-proxy | coredns | localpv) curl -fsS --max-time 2 "$(health_url "$1")" >/dev/null 2>&1 ;;
	*)
		# Self-signed serving certificates; the health paths need no auth.
		curl -fsSk --max-time 2 "$(health_url "$1")" >/dev/null 2>&1
		;;
	esac
}

fail_component() {
	local name="$1" why="$2" logf="$LOG_DIR/$1.log"
	log "$name: $why; log: $logf"
	if [[ -f "$logf" ]]; then
		# The last lines written since this start.
		awk '/^=== .* cluster.sh: starting /{n=0; delete l} {l[n++]=$0} END{for(i=(n>15?n-15:0);i<n;i++) print "  | " l[i]}' "$logf" >&2
	fi
	exit 1
}

start_component() {
	local name="$1" logf="$LOG_DIR/$1.log" pid
	component_args "$name"
	# A component started with other flags (by an older cluster.sh) is
	# restarted with the current ones.
	if pid="$(component_pid "$name")" && ! same_args "$pid"; then
		log "$name: running (pid $pid) with other flags; restarting it"
		stop_component "$name"
	fi
	if pid="$(component_pid "$name")"; then
		if healthy "$name"; then
			return 0
		fi
		log "$name: running (pid $pid) but not healthy yet"
	else
		mkdir -p "$PID_DIR" "$LOG_DIR"
		printf '=== %s cluster.sh: starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$logf"
		# setsid: the component outlives this script and the test that ran
		# it; 9>&- : it must not inherit the lock on $LOCK_FILE.
		setsid "$(component_bin "$name")" "${ARGS[@]}" </dev/null >>"$logf" 2>&1 9>&- &
		pid=$!
		disown "$pid"
		echo "$pid" >"$PID_DIR/$name.pid"
		log "$name: started (pid $pid, log $logf)"
	fi
	wait_healthy "$name" "$pid"
}

# alive PID: the process exists and is not a zombie. (While it starts, its
# command line is setsid's, not yet the component's.)
alive() {
	local state
	state="$(awk '{print $3}' 2>/dev/null "/proc/$1/stat")" || return 1
	[[ -n "$state" && "$state" != Z ]]
}

wait_healthy() {
	local name="$1" pid="$2" start=$SECONDS
	until healthy "$name"; do
		alive "$pid" || fail_component "$name" "exited while starting"
		((SECONDS - start < START_TIMEOUT)) || fail_component "$name" "not healthy after ${START_TIMEOUT}s ($(health_url "$name"))"
		sleep 0.2
	done
}

# wait_gone PID SECONDS: until the process is gone (or a zombie).
wait_gone() {
	local pid="$1" deadline=$((SECONDS + $2))
	while alive "$pid"; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

stop_pid() {
	local name="$1" pid="$2"
	kill -TERM "$pid" 2>/dev/null || return 0
	# kube-apiserver drains watches for up to a minute on SIGTERM; a test
	# cluster need not wait that long (its data is in etcd).
	if ! wait_gone "$pid" 5; then
		log "$name: still running 5s after SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" 10 || log "$name: pid $pid did not exit"
	fi
}

stop_component() {
	local name="$1" pid
	if pid="$(component_pid "$name")"; then
		log "$name: stopping (pid $pid)"
		stop_pid "$name" "$pid"
	fi
	rm -f "$PID_DIR/$name.pid"
}

# Processes of this cluster whose pid file is gone (a cluster.sh killed
# between starting a component and writing its pid): our binary, with this
# cluster's state directory in its arguments (every component has one), so
# that other users of the same binaries are left alone. Stopped by pid.
stop_strays() {
	local p pid arg0 name cmdline
	local -A bin=()
	for name in "${COMPONENTS[@]}"; do
		bin[$name]="$(component_bin "$name")"
	done
	for p in /proc/[0-9]*; do
		pid="${p#/proc/}"
		arg0="$(proc_arg0 "$pid")" || continue
		for name in "${COMPONENTS[@]}"; do
			[[ "$arg0" == "${bin[$name]}" ]] || continue
			cmdline="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
			[[ "$cmdline" == *"$STATE_DIR/"* ]] || continue
			log "$name: stopping stray process $pid"
			stop_pid "$name" "$pid"
		done
	done
}

stop_all() {
	local i
	# The real node first, while the API still answers: its pods are
	# stopped by the kubelet, its containers by containerd.
	((REAL_NODE == 0)) || realnode_stop
	for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
		stop_component "${COMPONENTS[i]}"
	done
	stop_strays
	((REAL_NODE == 0)) || realnode_clean
}

# --- cluster --------------------------------------------------------------

kubectl() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

lock() {
	mkdir -p "$INSTANCE_DIR"
	exec 9>"$LOCK_FILE"
	flock -w 3600 9 || die "another cluster.sh holds $LOCK_FILE for over an hour"
}

link_bin() {
	mkdir -p "$REPO_ROOT/.cache/cluster" "$BIN_DIR"
	ln -sfn "$BIN_DIR" "$REPO_ROOT/.cache/cluster/bin"
}

build() {
	link_bin
	local groups=(etcd kwok kubernetes)
	((REAL_NODE == 0)) || groups+=(coredns)
	"$REPO_ROOT/tools/build.sh" "${groups[@]}" ||
		die "build failed (the failing group and its log are named above)"
}

node_manifest() {
	local i name
	for ((i = 0; i < $1; i++)); do
		name="kwok-node-$i"
		cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    node-role.kubernetes.io/agent: ""
    type: kwok
EOF
	done
}

bootstrap_objects() {
	local fm=(--server-side --force-conflicts --field-manager=codex-cluster)
	kubectl apply "${fm[@]}" -f "$SHARE_DIR/kwok/kwok.x-k8s.io_stages.yaml" >/dev/null ||
		die "applying the kwok Stage CRD failed"
	kubectl wait --for=condition=Established --timeout=60s crd/stages.kwok.x-k8s.io >/dev/null ||
		die "the kwok Stage CRD did not become Established"
	# Every yaml in stages/ (the node and pod lifecycle kwok plays; see
	# docs/testing.md) and manifests/ (the default StorageClass).
	kubectl apply "${fm[@]}" -f "$CLUSTER_DIR/stages/" >/dev/null ||
		die "applying $CLUSTER_DIR/stages/ failed"
	# Stages of ours (labelled) whose file is gone are removed; stages
	# applied by hand for a test carry no label and stay.
	local want have
	want="$(kubectl get -f "$CLUSTER_DIR/stages/" -o name)" ||
		die "listing the stages of $CLUSTER_DIR/stages/ failed"
	have="$(kubectl get stages.kwok.x-k8s.io -l codex-k8s.dev/cluster-stage=true -o name)" ||
		die "listing the cluster's stages failed"
	for stage in $have; do
		grep -qxF "$stage" <<<"$want" || kubectl delete "$stage" >/dev/null ||
			die "deleting the stage $stage, whose file is gone, failed"
	done
	kubectl apply "${fm[@]}" -f "$CLUSTER_DIR/manifests/" >/dev/null ||
		die "applying $CLUSTER_DIR/manifests/ failed"
}

wait_nodes() {
	local want="$1" start=$SECONDS ready
	while :; do
		ready="$(kubectl get nodes -l type=kwok \
			-o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null |
			grep -c '^True$' || true)"
		((ready >= want)) && return 0
		component_pid kwok >/dev/null || fail_component kwok "exited while nodes were starting"
		((SECONDS - start < START_TIMEOUT)) || fail_component kwok "only $ready of $want nodes Ready after ${START_TIMEOUT}s"
		sleep 0.2
	done
}

# The service account controller makes `default` in every namespace; pods
# cannot be created before it exists.
wait_default_sa() {
	local start=$SECONDS
	until kubectl -n default get serviceaccount default >/dev/null 2>&1; do
		((SECONDS - start < START_TIMEOUT)) ||
			fail_component kube-controller-manager "no default ServiceAccount after ${START_TIMEOUT}s"
		sleep 0.2
	done
}

cmd_up() {
	local t0=$SECONDS
	lock
	((REAL_NODE == 0)) || realnode_check
	build
	local fresh=0
	if [[ -f "$STATE_DIR/ports.env" ]]; then
		load_ports
	else
		fresh=1
		rm -rf "$STATE_DIR"
		mkdir -p "$STATE_DIR" "$LOG_DIR"
		# Choosing and recording the ports is one step for all clusters
		# here, so two named clusters created at once get different ones.
		exec 8>"$CACHE_ROOT/ports.lock"
		flock -w 60 8 || die "cannot lock $CACHE_ROOT/ports.lock"
		load_ports
		save_ports
		exec 8>&-
		# New cluster, new logs.
		for c in "${COMPONENTS[@]}"; do : >"$LOG_DIR/$c.log"; done
	fi
	gen_pki
	gen_more_pki
	write_configs

	# From here on, a failure stops every component: a failed `up` leaves
	# no process behind (state and logs stay for reading).
	trap 'rc=$?; if ((rc != 0)); then log "up failed; stopping all components (logs in $LOG_DIR)"; stop_all; fi' EXIT

	start_component etcd
	start_component kube-apiserver
	start_component kube-controller-manager
	start_component kube-scheduler
	bootstrap_objects
	start_component kwok
	local nodes="${CLUSTER_NODES:-3}"
	node_manifest "$nodes" | kubectl apply --server-side --field-manager=codex-cluster -f - >/dev/null ||
		die "creating the simulated nodes failed"
	wait_nodes "$nodes"
	wait_default_sa
	((REAL_NODE == 0)) || realnode_up
	trap - EXIT
	if ((fresh)); then
		log "up: cluster started in $((SECONDS - t0))s"
	else
		log "up: cluster running ($((SECONDS - t0))s)"
	fi
	local real=""
	((REAL_NODE == 0)) || real=" and the real node $REAL_NODE_NAME"
	log "API https://127.0.0.1:$APISERVER_PORT, $nodes simulated nodes$real, logs in $LOG_DIR"
	echo "$KUBECONFIG_FILE"
}

# Hostpath-provisioned volumes are directories the controller-manager made
# under /tmp/hostpath_pv (a fixed path in Kubernetes). Remove those of this
# cluster while its API still answers.
remove_hostpath_volumes() {
	healthy kube-apiserver || return 0
	local p
	# An if, not `[[ ]] && rm`: under set -e a last line that does not match
	# (a local volume has no hostPath) would end down silently with 1.
	while read -r p; do
		if [[ "$p" =~ ^/tmp/hostpath_pv/[0-9a-f-]+$ ]]; then
			rm -rf -- "$p"
		fi
	done < <(kubectl get pv -o jsonpath='{range .items[*]}{.spec.hostPath.path}{"\n"}{end}' 2>/dev/null || true)
}

cmd_down() {
	local purge=0
	case "${1:-}" in
	"") ;;
	--purge) purge=1 ;;
	*) die "usage: cluster.sh down [--purge]" ;;
	esac
	lock
	if [[ -f "$STATE_DIR/ports.env" ]]; then
		load_ports
		remove_hostpath_volumes
	fi
	stop_all
	rm -rf "$STATE_DIR"
	if ((purge)); then
		if ((REAL_NODE)); then
			realnode_unmount_under "$CONTAINERD_ROOT"
			rm -rf "$CONTAINERD_ROOT"
		fi
		rm -rf "$LOG_DIR"
		# A named cluster leaves nothing behind but its (empty) lock file.
		[[ -z "$CLUSTER_NAME" ]] || rm -rf "$INSTANCE_DIR"
		log "down: stopped; state and logs removed"
	else
		log "down: stopped; state removed (logs kept in $LOG_DIR)"
	fi
}

cmd_restart() {
	local name="${1:-}"
	[[ -n "$name" ]] || die "usage: cluster.sh restart COMPONENT (one of: ${COMPONENTS[*]})"
	[[ " ${COMPONENTS[*]} " == *" $name "* ]] ||
		die "unknown component '$name' (want one of: ${COMPONENTS[*]})"
	lock
	[[ -f "$STATE_DIR/ports.env" ]] || die "no cluster state; run: $0 up"
	load_ports
	stop_component "$name"
	start_component "$name"
	log "restart: $name is healthy again"
}

cmd_status() {
	if [[ ! -f "$STATE_DIR/ports.env" ]]; then
		echo "cluster: not created (no state in $STATE_DIR)"
		return 3
	fi
	load_ports
	local c pid rc=0 state
	for c in "${COMPONENTS[@]}"; do
		if pid="$(component_pid "$c")"; then
			if healthy "$c"; then state=healthy; else state=unhealthy rc=1; fi
			printf '%-24s %-10s pid %-8s %s\n' "$c" "$state" "$pid" "$LOG_DIR/$c.log"
		else
			printf '%-24s %-10s %-12s %s\n' "$c" stopped "" "$LOG_DIR/$c.log"
			rc=1
		fi
	done
	if healthy kube-apiserver; then
		kubectl get nodes -o wide || true
	fi
	((REAL_NODE == 0)) || realnode_status
	echo "kubeconfig: $KUBECONFIG_FILE"
	return "$rc"
}

cmd_kubeconfig() {
	[[ -f "$KUBECONFIG_FILE" ]] || log "no cluster yet; the file appears after: $0 up"
	echo "$KUBECONFIG_FILE"
	[[ -f "$KUBECONFIG_FILE" ]]
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

main() {
	local cmd="${1:-}"
	[[ $# -gt 0 ]] && shift
	case "$cmd" in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	status) cmd_status "$@" ;;
	kubeconfig) cmd_kubeconfig "$@" ;;
	restart) cmd_restart "$@" ;;
	build) lock && build ;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
