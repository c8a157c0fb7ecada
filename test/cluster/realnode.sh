# The real node of the shared cluster: containerd, kubelet, kube-proxy and
# CoreDNS on this machine, next to the kwok nodes. Sourced by cluster.sh
# (which defines log, die, kubectl, the paths and the component helpers).
#
# Everything of the node lives under the cluster's folders (config, state,
# sockets, kubelet root, pod logs, CNI state) except what the kernel keeps
# globally: the bridge $REAL_BRIDGE, iptables chains, cgroups named kubepods,
# and the sysctls the kubelet and the bridge plugin set. `up` records every
# sysctl before the node starts; `down` undoes all of it (see realnode_clean).
#
# Pods get addresses from $REAL_POD_CIDR on the bridge, with no masquerade:
# the iptables chain CODEX-REAL-NODE drops whatever they send that is not for
# this machine or another pod, so a pod reaches nothing outside this machine.

REAL_NODE_NAME=codex-real-node
REAL_BRIDGE=codex0
# A private range of its own: neither the simulated pods' $POD_CIDR
# (10.244.0.0/16) nor the Services' $SERVICE_CIDR (10.96.0.0/16).
REAL_POD_CIDR=10.248.0.0/24
# The bridge's (the host's) address on that range: the node's InternalIP,
# where the API server reaches the kubelet and pods reach CoreDNS. (A
# kubelet refuses a loopback node IP.)
REAL_NODE_IP=10.248.0.1
CLUSTER_DNS_IP=10.96.0.10
REAL_TAINT=codex-k8s.dev/real-node
REAL_CHAIN=CODEX-REAL-NODE
# The made-up registry of the images built by test/images.
IMAGE_REGISTRY=codex.local
# The images every up builds and imports; CLUSTER_DEV_IMAGES=0 leaves out
# the (large) dev images.
REAL_IMAGES=(pause testbox toolbox)
[[ "${CLUSTER_DEV_IMAGES:-1}" == 0 ]] || REAL_IMAGES+=(go-dev node-dev)

NODE_DIR="$STATE_DIR/node"
# Kept across down (image layers are slow to import); removed by down --purge.
CONTAINERD_ROOT="$CACHE_ROOT/containerd"
IMAGE_DIR="$CACHE_ROOT/images"
CONTAINERD_SOCK="$NODE_DIR/containerd.sock"
KUBELET_ROOT="$NODE_DIR/kubelet"
POD_LOG_DIR="$NODE_DIR/pod-logs"
CNI_DIR="$NODE_DIR/cni"
SYSCTL_RECORD="$NODE_DIR/sysctl.before"
HOST_RECORD="$NODE_DIR/host.before"
# Global paths the node's programs create whatever their config says;
# removed at down when they did not exist before up.
HOST_PATHS=(/run/containerd /var/lib/kubelet /var/log/containers /var/log/pods /run/netns)

ctr_() { ctr -a "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# --- checks ---------------------------------------------------------------

realnode_check_host() {
	local missing=() p
	# git goes into the toolbox image (the workspace helper clones with it).
	for p in containerd:containerd runc:runc iptables:iptables conntrack:conntrack ip:iproute2 git:git; do
		command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}")
	done
	[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
		missing+=(containernetworking-plugins)
	[[ "$(id -u)" == 0 ]] || die "the real node runs containerd and a kubelet: run as root, or set CLUSTER_REAL_NODE=0"
	((${#missing[@]} == 0)) && return 0
	realnode_install "${missing[@]}" ||
		die "the real node needs packages that are missing: ${missing[*]} (apt-get install ${missing[*]}; log: $LOG_DIR/apt.log), or set CLUSTER_REAL_NODE=0 for a cluster of simulated nodes only"
}

# realnode_install PACKAGE...: Debian's packages, as on a fresh machine. apt
# gets a world-writable TMPDIR of its own: /tmp may not be one here.
realnode_install() {
	command -v apt-get >/dev/null || return 1
	local tmp=/var/tmp/apt-tmp
	mkdir -p "$tmp" "$LOG_DIR" && chmod 1777 "$tmp" || return 1
	log "real node: installing $* (log: $LOG_DIR/apt.log)"
	{
		TMPDIR="$tmp" apt-get update -qq &&
			TMPDIR="$tmp" DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
	} >"$LOG_DIR/apt.log" 2>&1
}

# realnode_check_alone: no real node of another cluster folder (another
# CODEX_CACHE_DIR) runs here: two kubelets would share the kubepods cgroups,
# the bridge and the iptables chains.
realnode_check_alone() {
	local p cmdline arg0
	for p in /proc/[0-9]*; do
		arg0="$(proc_arg0 "${p#/proc/}")" || continue
		[[ "$arg0" == */kubelet || "$arg0" == */containerd ]] || continue
		cmdline="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
		[[ "$cmdline" == *"--hostname-override=$REAL_NODE_NAME"* || "$cmdline" == *containerd*" --config "*/node/containerd.toml* ]] || continue
		[[ "$cmdline" == *"$NODE_DIR/"* ]] && continue
		die "another real node runs on this machine (pid ${p#/proc/}: ${cmdline:0:160}...); stop it with the cluster.sh down of its CODEX_CACHE_DIR, or set CLUSTER_REAL_NODE=0"
	done
}

# --- host state: record before, restore at down -----------------------------

# Sysctls that change on their own (counters, the last pid) are not ours to
# restore.
VOLATILE_SYSCTLS='^(kernel\.ns_last_pid|kernel\.random\.|fs\.(dentry|inode|file)-|net\.netfilter\.nf_conntrack_count)'

realnode_record_host() {
	[[ -f "$SYSCTL_RECORD" ]] && return 0
	mkdir -p "$NODE_DIR"
	sysctl -a 2>/dev/null | grep -Ev "$VOLATILE_SYSCTLS" >"$SYSCTL_RECORD.tmp" || true
	local p
	for p in "${HOST_PATHS[@]}"; do
		[[ -e "$p" ]] && echo "$p"
	done >"$HOST_RECORD"
	mv "$SYSCTL_RECORD.tmp" "$SYSCTL_RECORD"
}

# Every recorded sysctl that differs now is written back (keys that are gone,
# such as those of removed interfaces, are skipped).
SYSCTL_NOT_RESTORED=()
realnode_restore_sysctls() {
	[[ -f "$SYSCTL_RECORD" ]] || return 0
	local key value now file n=0 line
	local -A current=()
	while IFS= read -r line; do
		current["${line%% = *}"]="${line#* = }"
	done < <(sysctl -a 2>/dev/null)
	while IFS= read -r line; do
		key="${line%% = *}"
		value="${line#* = }"
		[[ -n "${current[$key]+set}" ]] || continue
		now="${current[$key]}"
		[[ "$now" == "$value" ]] && continue
		file="/proc/sys/${key//.//}"
		[[ -w "$file" ]] || continue
		if printf '%s\n' "$value" >"$file" 2>/dev/null; then
			log "real node: restored $key = $value (was $now)"
			n=$((n + 1))
		else
			SYSCTL_NOT_RESTORED+=("$key = $now (was $value)")
		fi
	done <"$SYSCTL_RECORD"
	((n == 0)) || log "real node: $n sysctls restored"
}

realnode_remove_host_paths() {
	[[ -f "$HOST_RECORD" ]] || return 0
	local p
	for p in "${HOST_PATHS[@]}"; do
		grep -qxF "$p" "$HOST_RECORD" && continue
		[[ -e "$p" ]] || continue
		realnode_unmount_under "$p"
		rm -rf -- "$p"
	done
}

# --- network --------------------------------------------------------------

realnode_network_up() {
	if ! ip link show "$REAL_BRIDGE" >/dev/null 2>&1; then
		ip link add "$REAL_BRIDGE" type bridge || die "creating the bridge $REAL_BRIDGE failed"
	fi
	ip addr replace "$REAL_NODE_IP/${REAL_POD_CIDR#*/}" dev "$REAL_BRIDGE" ||
		die "giving $REAL_BRIDGE the address $REAL_NODE_IP failed"
	ip link set "$REAL_BRIDGE" up
	# The chain is made anew each time, then hooked in first.
	iptables -w -N "$REAL_CHAIN" 2>/dev/null || iptables -w -F "$REAL_CHAIN"
	# Pods talk to pods; the host (INPUT) is not filtered here.
	iptables -w -A "$REAL_CHAIN" -i "$REAL_BRIDGE" -d "$REAL_POD_CIDR" -j RETURN
	iptables -w -A "$REAL_CHAIN" -i "$REAL_BRIDGE" -j DROP
	# The host itself never sends to simulated pods or to a Service address
	# that kube-proxy did not translate to a real pod.
	iptables -w -A "$REAL_CHAIN" -o "$REAL_BRIDGE" -j RETURN
	iptables -w -A "$REAL_CHAIN" -d "$POD_CIDR" -j REJECT
	iptables -w -A "$REAL_CHAIN" -d "$SERVICE_CIDR" -j REJECT
	local c
	for c in FORWARD OUTPUT; do
		iptables -w -C "$c" -j "$REAL_CHAIN" 2>/dev/null || iptables -w -I "$c" 1 -j "$REAL_CHAIN"
	done
	mkdir -p "$CNI_DIR/net.d" "$CNI_DIR/networks"
	write_if_changed "$CNI_DIR/net.d/10-codex.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "codex-real-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$REAL_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CNI_DIR/networks",
        "ranges": [[{"subnet": "$REAL_POD_CIDR", "gateway": "$REAL_NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "loopback"}
  ]
}
EOF
}

# iptables chains of ours (CODEX-REAL-NODE) and of the kubelet and
# kube-proxy (KUBE-*), in every table, IPv4 and IPv6: the jumps to them from
# the built-in chains first, then the chains.
# realnode_chains IPT TABLE: the KUBE-* and CODEX-* chains of TABLE.
realnode_chains() {
	"$1" -w -t "$2" -S 2>/dev/null | sed -n 's/^-N \(\(KUBE\|CODEX\)-[^ ]*\)$/\1/p'
}

realnode_iptables_clean() {
	local ipt t rule chain
	for ipt in iptables ip6tables; do
		command -v "$ipt" >/dev/null || continue
		for t in filter nat mangle raw; do
			"$ipt" -w -t "$t" -S >/dev/null 2>&1 || continue
			while IFS= read -r rule; do
				eval "$ipt -w -t $t -D ${rule#-A }" 2>/dev/null || true
			done < <("$ipt" -w -t "$t" -S | grep -E '^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*-j (KUBE-|CODEX-)')
			for chain in $(realnode_chains "$ipt" "$t"); do
				"$ipt" -w -t "$t" -F "$chain" 2>/dev/null || true
			done
			for chain in $(realnode_chains "$ipt" "$t"); do
				"$ipt" -w -t "$t" -X "$chain" 2>/dev/null || log "real node: could not remove $ipt chain $t/$chain"
			done
		done
	done
}

realnode_network_clean() {
	local dev
	# Veth ends left on the bridge (pods whose CNI DEL never ran).
	for dev in $(ip -o link show master "$REAL_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
		ip link del "$dev" 2>/dev/null || true
	done
	ip link del "$REAL_BRIDGE" 2>/dev/null || true
	realnode_iptables_clean
}

# --- files and processes --------------------------------------------------

# realnode_mounts_under DIR: the mounts at or below DIR.
realnode_mounts_under() {
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts
}

# realnode_unmount_under DIR: every mount at or below DIR, deepest first.
realnode_unmount_under() {
	local m
	while IFS= read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "real node: could not unmount $m"
	done < <(realnode_mounts_under "$1" | sort -r)
}

# realnode_cgroups: the kubelet's cgroup trees that exist (cgroup v1
# controllers, v1's unified hierarchy, v2).
realnode_cgroups() {
	local d
	for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods /sys/fs/cgroup/kubepods; do
		[[ -d "$d" ]] && printf '%s\n' "$d"
	done
	return 0
}

# Processes started by containerd for the node: shims (their command line
# names our socket) and everything in the kubelet's cgroups.
realnode_kill_leftovers() {
	local p pid cmdline n=0 f arg0
	for p in /proc/[0-9]*; do
		pid="${p#/proc/}"
		arg0="$(proc_arg0 "$pid")" || continue
		[[ "$arg0" == *containerd-shim* ]] || continue
		cmdline="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
		if [[ "$cmdline" == *containerd-shim*"$CONTAINERD_SOCK"* ]]; then
			kill -KILL "$pid" 2>/dev/null && n=$((n + 1))
		fi
	done
	for f in $(realnode_cgroups | xargs -r -I{} find {} -name cgroup.procs 2>/dev/null); do
		while read -r pid; do
			kill -KILL "$pid" 2>/dev/null && n=$((n + 1))
		done <"$f"
	done
	((n == 0)) || log "real node: killed $n leftover processes (shims, containers)"
	((n == 0)) || sleep 0.5
}

realnode_cgroups_clean() {
	local d
	for d in $(realnode_cgroups); do
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[[ -d "$d" ]] && log "real node: cgroup $d is still there (processes left in it?)"
	done
	return 0
}

# --- images ---------------------------------------------------------------

# realnode_build_tools: the programs of this repository the node runs:
# the image builder (test/images) and the volume provisioner
# (test/cluster/localpv). Quick when the Go build cache is warm.
realnode_build_tools() {
	local logf="$LOG_DIR/build-node-tools.log" stamp
	mkdir -p "$LOG_DIR"
	# Rebuilt only when a source, a module file or Go changed.
	stamp="$({
		go version
		cd "$REPO_ROOT" && find test/images test/cluster/localpv go.mod go.sum -type f \
			! -path '*/node_modules/*' -print0 | sort -z | xargs -0 sha256sum
	} | sha256sum | cut -d' ' -f1)"
	if [[ -x "$BIN_DIR/codex-images" && -x "$BIN_DIR/localpv" && "$(cat "$BIN_DIR/.node-tools.stamp" 2>/dev/null)" == "$stamp" ]]; then
		return 0
	fi
	{
		(cd "$REPO_ROOT/test/images" && GOWORK=off CGO_ENABLED=0 go build -o "$BIN_DIR/codex-images.tmp" ./cmd/images) &&
			(cd "$REPO_ROOT" && CGO_ENABLED=0 go build -o "$BIN_DIR/localpv.tmp" ./test/cluster/localpv)
	} >"$logf" 2>&1 || {
		tail -n 20 "$logf" >&2
		die "building the node's tools (test/images, test/cluster/localpv) failed; log: $logf"
	}
	mv -f "$BIN_DIR/codex-images.tmp" "$BIN_DIR/codex-images"
	mv -f "$BIN_DIR/localpv.tmp" "$BIN_DIR/localpv"
	echo "$stamp" >"$BIN_DIR/.node-tools.stamp"
}

# realnode_build_images: builds (or finds cached) the node's images and
# writes $STATE_DIR/images.env (IMAGE_PAUSE=REF, IMAGE_TESTBOX=REF, ...).
realnode_build_images() {
	local tool="$BIN_DIR/codex-images" logf="$LOG_DIR/images.log" name ref file
	: >"$logf"
	: >"$STATE_DIR/images.env.tmp"
	: >"$STATE_DIR/images.list"
	local out
	out="$("$tool" -src "$REPO_ROOT/test/images" -out "$IMAGE_DIR" "${REAL_IMAGES[@]}" 2>>"$logf")" ||
		{ tail -n 20 "$logf" >&2; die "building the node's images (${REAL_IMAGES[*]}) failed; log: $logf"; }
	while read -r name ref file; do
		name="${name^^}"
		echo "IMAGE_${name//-/_}=$ref" >>"$STATE_DIR/images.env.tmp"
		echo "$ref $file" >>"$STATE_DIR/images.list"
	done <<<"$out"
	mv "$STATE_DIR/images.env.tmp" "$STATE_DIR/images.env"
	# shellcheck source=/dev/null
	source "$STATE_DIR/images.env"
}

realnode_import_images() {
	local have ref file logf="$LOG_DIR/images.log"
	have="$(ctr_ images ls -q 2>/dev/null)" || die "containerd does not answer on $CONTAINERD_SOCK; log: $LOG_DIR/containerd.log"
	# Other versions of our images (older builds) go.
	for ref in $(grep "^$IMAGE_REGISTRY/" <<<"$have"); do
		grep -q "^$ref " "$STATE_DIR/images.list" || ctr_ images rm "$ref" >/dev/null 2>&1 || true
	done
	while read -r ref file; do
		grep -qxF "$ref" <<<"$have" && continue
		log "real node: importing $ref"
		ctr_ images import "$file" >>"$logf" 2>&1 ||
			{ tail -n 10 "$logf" >&2; die "importing the image $ref ($file) into containerd failed; log: $logf"; }
	done <"$STATE_DIR/images.list"
}

# --- configuration --------------------------------------------------------

realnode_gen_pki() {
	local san="IP:$REAL_NODE_IP,DNS:$REAL_NODE_NAME"
	[[ -f "$PKI/kubelet.crt" ]] || gen_cert kubelet "/O=system:nodes/CN=system:node:$REAL_NODE_NAME" clientAuth
	[[ -f "$PKI/kubelet-serving.crt" ]] || gen_cert kubelet-serving "/CN=$REAL_NODE_NAME" serverAuth "$san"
	[[ -f "$PKI/kube-proxy.crt" ]] || gen_cert kube-proxy "/CN=system:kube-proxy" clientAuth
	[[ -f "$PKI/coredns.crt" ]] || gen_cert coredns "/CN=codex:coredns" clientAuth
	[[ -f "$PKI/localpv.crt" ]] || gen_cert localpv "/CN=codex:localpv" clientAuth
	return 0
}

realnode_write_configs() {
	mkdir -p "$NODE_DIR" "$KUBELET_ROOT" "$POD_LOG_DIR"
	write_kubeconfig "$NODE_DIR/kubelet.kubeconfig" kubelet
	write_kubeconfig "$NODE_DIR/kube-proxy.kubeconfig" kube-proxy
	write_kubeconfig "$NODE_DIR/coredns.kubeconfig" coredns
	write_kubeconfig "$NODE_DIR/localpv.kubeconfig" localpv
	realnode_containerd_config | write_if_changed "$NODE_DIR/containerd.toml"
	realnode_kubelet_config | write_if_changed "$NODE_DIR/kubelet.yaml"
	realnode_kube_proxy_config | write_if_changed "$NODE_DIR/kube-proxy.yaml"
	write_if_changed "$NODE_DIR/Corefile" <<EOF
.:53 {
    bind $REAL_NODE_IP
    errors
    health 127.0.0.1:$COREDNS_PORT
    ready 127.0.0.1:$COREDNS_READY_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $NODE_DIR/coredns.kubeconfig codex-test
        pods insecure
        ttl 5
    }
    cache 5
}
EOF
}

# write_if_changed FILE: stdin into FILE, unless FILE holds it already
# (kube-proxy exits when its config file is written to).
write_if_changed() {
	local tmp="$1.tmp"
	cat >"$tmp"
	if cmp -s "$tmp" "$1"; then
		rm -f "$tmp"
	else
		mv -f "$tmp" "$1"
	fi
}

realnode_containerd_config() {
	cat <<EOF
version = 2
root = "$CONTAINERD_ROOT"
state = "$NODE_DIR/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$NODE_DIR/containerd-ttrpc.sock"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd-opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMAGE_PAUSE"
  # Root here lacks CAP_SYS_RESOURCE: runc must not raise oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  enable_unprivileged_ports = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$NODE_DIR/runc"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI_DIR/net.d"
EOF
}

realnode_kubelet_config() {
	cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $REAL_NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# cgroup v1 without systemd; the kubelet refuses cgroup v1 unless told.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
# Root here cannot lower its own oom_score_adj (no CAP_SYS_RESOURCE).
oomScoreAdj: 0
podLogsDir: $POD_LOG_DIR
clusterDNS: [$CLUSTER_DNS_IP]
clusterDomain: cluster.local
# No upstream resolvers: pods with dnsPolicy Default get none.
resolvConf: ""
registerWithTaints:
- {key: $REAL_TAINT, value: "true", effect: NoSchedule}
maxPods: 60
serializeImagePulls: false
# Images are imported, never pulled: never collect them, and do not evict
# pods on a nearly full test disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
nodeStatusReportFrequency: 10s
EOF
}

realnode_kube_proxy_config() {
	cat <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $NODE_DIR/kube-proxy.kubeconfig
hostnameOverride: $REAL_NODE_NAME
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_PORT
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
mode: iptables
clusterCIDR: $REAL_POD_CIDR
iptables:
  # No route_localnet: NodePorts are not served on 127.0.0.1.
  localhostNodePorts: false
# NodePorts only on the node's own address, never on this machine's
# other interfaces.
nodePortAddresses: [$REAL_NODE_IP/32]
# Leave the conntrack sysctls as they are.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# --- lifecycle ------------------------------------------------------------

# realnode_objects: what the node needs in the API: CoreDNS's permissions,
# the kube-dns Service with CoreDNS (on the host, at $REAL_NODE_IP) as its
# endpoint, and the storage class of the node's volumes.
realnode_objects() {
	local f
	for f in "$CLUSTER_DIR"/realnode/*.yaml; do
		echo ---
		sed -e "s/@CLUSTER_DNS_IP@/$CLUSTER_DNS_IP/g" -e "s/@REAL_NODE_IP@/$REAL_NODE_IP/g" \
			-e "s/@REAL_NODE_NAME@/$REAL_NODE_NAME/g" "$f"
	done | kubectl apply --server-side --force-conflicts --field-manager=codex-cluster -f - >/dev/null ||
		die "applying $CLUSTER_DIR/realnode/ failed"
}

realnode_wait_ready() {
	local start=$SECONDS ready
	while :; do
		ready="$(kubectl get node "$REAL_NODE_NAME" \
			-o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
		[[ "$ready" == True ]] && return 0
		component_pid kubelet >/dev/null || fail_component kubelet "exited before the node $REAL_NODE_NAME registered"
		((SECONDS - start < START_TIMEOUT)) ||
			fail_component kubelet "node $REAL_NODE_NAME not Ready after ${START_TIMEOUT}s (Ready=${ready:-not registered})"
		sleep 0.5
	done
}

# realnode_check: before anything starts (a failed up cleans up after
# itself, and must not touch another node's state).
realnode_check() {
	realnode_check_host
	realnode_check_alone
}

realnode_up() {
	realnode_gen_pki
	realnode_build_tools
	realnode_build_images
	realnode_write_configs
	realnode_record_host
	realnode_network_up
	start_component containerd
	realnode_import_images
	start_component kubelet
	realnode_wait_ready
	# A kubelet may not set node-role labels itself (NodeRestriction).
	kubectl label node "$REAL_NODE_NAME" --overwrite node-role.kubernetes.io/real-node= >/dev/null ||
		die "labelling the node $REAL_NODE_NAME failed"
	realnode_objects
	start_component kube-proxy
	start_component coredns
	start_component localpv
}

# realnode_drain: while the API and the kubelet run, pods of the node are
# deleted at once, so the kubelet stops them as usual (their network and
# mounts torn down by the runtime).
realnode_drain() {
	healthy kube-apiserver || return 0
	component_pid kubelet >/dev/null || return 0
	kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$REAL_NODE_NAME" \
		--grace-period=0 --force --wait=false >/dev/null 2>&1 || true
	local start=$SECONDS
	while [[ -n "$(ctr_ tasks ls -q 2>/dev/null)" ]] && ((SECONDS - start < 20)); do
		sleep 0.5
	done
}

# realnode_stop: stops the node's components and every container, then
# removes what they left on the host.
realnode_stop() {
	realnode_drain
	stop_component localpv
	stop_component coredns
	stop_component kube-proxy
	stop_component kubelet
	local id
	if component_pid containerd >/dev/null; then
		for id in $(ctr_ tasks ls -q 2>/dev/null); do
			ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
		done
		sleep 0.2
		for id in $(ctr_ tasks ls -q 2>/dev/null); do
			ctr_ tasks delete -f "$id" >/dev/null 2>&1 || true
		done
		for id in $(ctr_ containers ls -q 2>/dev/null); do
			ctr_ containers delete "$id" >/dev/null 2>&1 || true
		done
	fi
	stop_component containerd
}

# realnode_clean: after every process is stopped, whatever the node left on
# the host: processes, mounts, network, cgroups, sysctls, folders. The
# machine-wide part only when this cluster's node set it up (its record of
# the sysctls exists): never another cluster folder's node.
realnode_clean() {
	if [[ ! -f "$SYSCTL_RECORD" ]]; then
		realnode_unmount_under "$NODE_DIR"
		rm -rf -- "$NODE_DIR"
		return 0
	fi
	realnode_kill_leftovers
	realnode_unmount_under "$NODE_DIR"
	realnode_unmount_under "$CONTAINERD_ROOT"
	realnode_unmount_under /run/containerd
	if [[ -x "$BIN_DIR/kube-proxy" && -f "$SYSCTL_RECORD" ]]; then
		"$BIN_DIR/kube-proxy" --cleanup >"$LOG_DIR/kube-proxy-cleanup.log" 2>&1 || true
	fi
	realnode_network_clean
	realnode_cgroups_clean
	realnode_restore_sysctls
	realnode_remove_host_paths
	rm -rf -- "$NODE_DIR"
	realnode_check_clean
}

# realnode_check_clean: after the clean-up, what the node could have
# left on the host, checked: a leftover is named and down fails, so that CI
# (whose EXIT trap runs down) notices a clean-up that broke.
realnode_check_clean() {
	local left=() p arg0 cmdline m line
	for p in /proc/[0-9]*; do
		arg0="$(proc_arg0 "${p#/proc/}")" || continue
		cmdline="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
		case "$arg0" in
		*containerd-shim* | */containerd | "$BIN_DIR"/kubelet | "$BIN_DIR"/kube-proxy | "$BIN_DIR"/coredns) ;;
		*) continue ;;
		esac
		[[ "$cmdline" == *"$NODE_DIR"* || "$cmdline" == *"$CONTAINERD_SOCK"* || "$arg0" == "$BIN_DIR"/* ]] &&
			left+=("process ${p#/proc/} (${cmdline:0:100})")
	done
	while IFS= read -r m; do
		left+=("mount $m")
	done < <(realnode_mounts_under "$NODE_DIR"; realnode_mounts_under "$CONTAINERD_ROOT")
	ip link show "$REAL_BRIDGE" >/dev/null 2>&1 && left+=("bridge $REAL_BRIDGE")
	while IFS= read -r m; do
		left+=("network namespace $m")
	done < <(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}')
	for p in iptables ip6tables; do
		command -v "$p" >/dev/null || continue
		for m in filter nat mangle raw; do
			while IFS= read -r line; do
				left+=("$p chain $m/$line")
			done < <(realnode_chains "$p" "$m")
		done
	done
	while IFS= read -r p; do
		left+=("cgroup $p")
	done < <(realnode_cgroups)
	[[ -e "$NODE_DIR" ]] && left+=("folder $NODE_DIR (kubelet root, pod logs, CNI state)")
	for line in "${SYSCTL_NOT_RESTORED[@]}"; do
		left+=("sysctl $line")
	done
	((${#left[@]} == 0)) && return 0
	for line in "${left[@]}"; do
		log "real node: left behind: $line"
	done
	die "down: the real node left ${#left[@]} things behind (listed above)"
}

realnode_status() {
	local v
	v="$(ctr -a "$CONTAINERD_SOCK" version 2>/dev/null | awk '/^Server:/{s=1} s && /Version:/{print $2; exit}')" || true
	printf 'real node %s: containerd %s (%s), runc %s, pods on %s (%s)\n' "$REAL_NODE_NAME" \
		"${v:-not answering}" "$CONTAINERD_SOCK" "$(runc --version 2>/dev/null | awk 'NR==1{print $3}')" \
		"$REAL_BRIDGE" "$REAL_POD_CIDR"
}
