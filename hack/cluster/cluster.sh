#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, without Docker:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd
# (with Debian's runc and CNI plugins), kubelet, kube-proxy (iptables mode)
# and CoreDNS, every binary built from Go modules into ./bin.
#
#   hack/cluster/cluster.sh up       start the cluster, or reuse a running one
#   hack/cluster/cluster.sh down     stop it and remove everything it made
#   hack/cluster/cluster.sh status   say what runs
#   hack/cluster/cluster.sh load TAR...   import image tarballs into containerd
#
# State lives in .gatehouse-cluster/ of the checkout. The cluster sends no
# traffic off the machine: the API server and the kubelet listen on the
# address of the cluster's own bridge (gatehouse0, 10.244.0.1), pods have
# routes to the pod and Service ranges only (no default route), a FORWARD
# guard drops anything from the pod range to elsewhere, and CoreDNS answers
# cluster names only (no forwarding to upstream resolvers).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${GATEHOUSE_CLUSTER_STATE:-$root/.gatehouse-cluster}
BIN=$root/bin/cluster

NODE=gatehouse-node
BRIDGE=gatehouse0
NODE_IP=10.244.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_IP=10.96.0.10
API_PORT=16443
ETCD_PORT=23790
ETCD_PEER_PORT=23800
GUARD=GATEHOUSE-FWD
# Host settings the cluster changes; their old values are restored by down.
SYSCTLS=(net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables
	vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
	kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/ipv4/conf/all/route_localnet)
COMPONENTS=(etcd kube-apiserver containerd kubelet kube-controller-manager kube-scheduler kube-proxy)

say() { printf 'cluster: %s\n' "$*" >&2; }
die() {
	printf 'cluster: error: %s\n' "$*" >&2
	exit 1
}

kubectl_bin() { echo "$ENVTEST_DIR/kubectl"; }
kc() { "$(kubectl_bin)" --kubeconfig "$STATE/kubeconfig" "$@"; }

pid_of() { cat "$STATE/run/$1.pid" 2>/dev/null || true; }
alive() {
	local pid
	pid=$(pid_of "$1")
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# ---------------------------------------------------------------- checks

check_host() {
	[[ $(id -u) == 0 ]] || die "make cluster needs root: containerd, runc, the kubelet and kube-proxy manage mounts, cgroups, network namespaces and iptables. Run it as root (sudo make cluster)."
	[[ $(uname -s) == Linux ]] || die "make cluster needs Linux (this is $(uname -s))"
	[[ $(uname -m) == x86_64 ]] || die "make cluster builds amd64 images; this machine is $(uname -m)"
	local c missing=()
	if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
		for c in cpu memory pids; do grep -qw "$c" /sys/fs/cgroup/cgroup.controllers || missing+=("$c"); done
	else
		for c in cpu cpuacct memory pids devices freezer; do [[ -d /sys/fs/cgroup/$c ]] || missing+=("$c"); done
	fi
	((${#missing[@]} == 0)) || die "cgroup controllers missing: ${missing[*]} (mounted under /sys/fs/cgroup: $(cd /sys/fs/cgroup && echo *)). The kubelet and runc need them: boot with them enabled, or mount them (mount -t cgroup -o ${missing[0]} cgroup /sys/fs/cgroup/${missing[0]})."
	grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
	grep -qw overlay /proc/filesystems || die "the kernel has no overlay filesystem, which containerd's snapshotter needs (modprobe overlay)"
	ensure_packages
	[[ -d /proc/sys/net/bridge ]] || modprobe br_netfilter 2>/dev/null || true
	[[ -d /proc/sys/net/bridge ]] || die "the kernel has no br_netfilter (/proc/sys/net/bridge is missing), which Service traffic between pods on the bridge needs: modprobe br_netfilter"
	iptables -w -L -n >/dev/null 2>&1 || die "iptables does not work here: $(iptables -w -L -n 2>&1 | head -3)"
	command -v go >/dev/null || die "Go is not installed; the cluster's binaries are built from Go modules with Go 1.26"
}

# Debian packages the node needs: name=file it provides.
PACKAGES=(runc=/usr/sbin/runc containernetworking-plugins=/usr/lib/cni/bridge iptables=/usr/sbin/iptables
	iproute2=/usr/sbin/ip openssl=/usr/bin/openssl curl=/usr/bin/curl util-linux=/usr/bin/nsenter
	ca-certificates=/etc/ssl/certs/ca-certificates.crt kmod=/usr/sbin/modprobe)

ensure_packages() {
	local p missing=()
	for p in "${PACKAGES[@]}"; do [[ -e ${p#*=} ]] || missing+=("${p%%=*}"); done
	((${#missing[@]} == 0)) && return 0
	command -v apt-get >/dev/null || die "missing packages: ${missing[*]}; on Debian: apt-get install ${missing[*]}"
	say "installing Debian packages the node needs: ${missing[*]} (apt-get install ${missing[*]})"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed; install by hand: apt-get install ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed"
	for p in "${PACKAGES[@]}"; do [[ -e ${p#*=} ]] || die "${p%%=*} is installed but ${p#*=} is still missing"; done
}

# ---------------------------------------------------------------- state

pki() {
	local d=$STATE/pki
	[[ -f $d/.done ]] && return 0
	say "generating the cluster's certificates in ${d#"$root"/}"
	rm -rf "$d"
	mkdir -p "$d"
	(
		cd "$d"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
			-keyout ca.key -out ca.crt -subj /CN=gatehouse-cluster-ca \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature 2>/dev/null
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
		cert apiserver kube-apiserver "" server "IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
		cert kubelet-serving "system:node:$NODE" system:nodes server "IP:$NODE_IP,DNS:$NODE"
		cert admin gatehouse-admin system:masters client
		cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters client
		cert kubelet "system:node:$NODE" system:nodes client
		cert kube-controller-manager system:kube-controller-manager "" client
		cert kube-scheduler system:kube-scheduler "" client
		cert kube-proxy system:kube-proxy "" client
		rm -f ./*.csr ca.srl
	)
	chmod 600 "$d"/*.key
	touch "$d/.done"
}

cert() { # name CN O server|client SANs
	local name=$1 cn=$2 o=$3 kind=$4 sans=${5:-} subj="/CN=$2" ext
	[[ -n $o ]] && subj="/O=$o/CN=$cn"
	if [[ $kind == server ]]; then
		ext=$(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$sans")
	else
		ext=$(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n')
	fi
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
	openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -out "$name.crt" -extfile <(echo "$ext") 2>/dev/null
}

kubeconfig() { # file user server
	local ca crt key
	ca=$(base64 -w0 <"$STATE/pki/ca.crt")
	crt=$(base64 -w0 <"$STATE/pki/$2.crt")
	key=$(base64 -w0 <"$STATE/pki/$2.key")
	cat >"$1" <<-EOF
		apiVersion: v1
		kind: Config
		clusters:
		- name: gatehouse-cluster
		  cluster:
		    server: https://$3
		    certificate-authority-data: $ca
		users:
		- name: $2
		  user:
		    client-certificate-data: $crt
		    client-key-data: $key
		contexts:
		- name: gatehouse-cluster
		  context: {cluster: gatehouse-cluster, user: $2}
		current-context: gatehouse-cluster
	EOF
	chmod 600 "$1"
}

configs() {
	mkdir -p "$STATE"/{conf,logs,run,etcd,kubelet,pod-logs,cni/net.d,cni/ipam,cni/cache,containerd,runc,images,host}
	kubeconfig "$STATE/kubeconfig" admin "$NODE_IP:$API_PORT"
	local c
	for c in kubelet kube-controller-manager kube-scheduler kube-proxy; do
		kubeconfig "$STATE/conf/$c.kubeconfig" "$c" "$NODE_IP:$API_PORT"
	done
	# Pods resolve through the cluster DNS only; nothing is forwarded off the machine.
	echo "nameserver $DNS_IP" >"$STATE/conf/resolv.conf"

	cat >"$STATE/cni/net.d/10-gatehouse.conflist" <<-EOF
		{
		  "cniVersion": "1.0.0",
		  "name": "gatehouse",
		  "plugins": [{
		    "type": "bridge",
		    "bridge": "$BRIDGE",
		    "isGateway": true,
		    "ipMasq": false,
		    "hairpinMode": true,
		    "ipam": {
		      "type": "host-local",
		      "dataDir": "$STATE/cni/ipam",
		      "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
		      "routes": [{"dst": "$SERVICE_CIDR"}]
		    }
		  }]
		}
	EOF

	cat >"$STATE/containerd/config.toml" <<-EOF
		version = 3
		root = "$STATE/containerd/root"
		state = "$STATE/containerd/state"
		disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs", "io.containerd.differ.v1.erofs"]

		[grpc]
		  address = "$STATE/containerd/containerd.sock"

		[ttrpc]
		  address = "$STATE/containerd/containerd.sock.ttrpc"

		[plugins.'io.containerd.internal.v1.opt']
		  path = "$STATE/containerd/opt"

		[plugins.'io.containerd.cri.v1.images']
		  snapshotter = "overlayfs"
		  [plugins.'io.containerd.cri.v1.images'.pinned_images]
		    sandbox = "localhost/gatehouse-cluster/pause:1"

		[plugins.'io.containerd.cri.v1.runtime']
		  enable_selinux = false
		  disable_apparmor = true
		  # This host refuses lowering oom_score_adj (runc: "can't get final child's PID from pipe: EOF").
		  restrict_oom_score_adj = true
		  netns_mounts_under_state_dir = true
		  [plugins.'io.containerd.cri.v1.runtime'.cni]
		    bin_dirs = ["/usr/lib/cni"]
		    conf_dir = "$STATE/cni/net.d"
		  [plugins.'io.containerd.cri.v1.runtime'.containerd]
		    default_runtime_name = "runc"
		    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
		      runtime_type = "io.containerd.runc.v2"
		      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
		        BinaryName = "$(command -v runc)"
		        Root = "$STATE/runc"
		        SystemdCgroup = false
	EOF

	cat >"$STATE/conf/kubelet.yaml" <<-EOF
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		# The host uses cgroup v1, which kubelet 1.35+ refuses unless told otherwise.
		failCgroupV1: false
		cgroupDriver: cgroupfs
		cgroupsPerQOS: false
		enforceNodeAllocatable: []
		address: $NODE_IP
		port: 10250
		readOnlyPort: 0
		healthzBindAddress: 127.0.0.1
		healthzPort: 10248
		tlsCertFile: $STATE/pki/kubelet-serving.crt
		tlsPrivateKeyFile: $STATE/pki/kubelet-serving.key
		authentication:
		  anonymous: {enabled: false}
		  webhook: {enabled: true}
		  x509: {clientCAFile: $STATE/pki/ca.crt}
		authorization: {mode: Webhook}
		containerRuntimeEndpoint: unix://$STATE/containerd/containerd.sock
		clusterDomain: cluster.local
		clusterDNS: [$DNS_IP]
		resolvConf: $STATE/conf/resolv.conf
		podLogsDir: $STATE/pod-logs
		failSwapOn: false
		protectKernelDefaults: false
		serializeImagePulls: false
		imageGCHighThresholdPercent: 100
		imageGCLowThresholdPercent: 99
		evictionHard: {memory.available: 100Mi, nodefs.available: "1%", imagefs.available: "1%"}
		maxPods: 60
		staticPodPath: ""
		syncFrequency: 10s
		fileCheckFrequency: 10s
		nodeStatusUpdateFrequency: 5s
	EOF

	cat >"$STATE/conf/kube-proxy.yaml" <<-EOF
		apiVersion: kubeproxy.config.k8s.io/v1alpha1
		kind: KubeProxyConfiguration
		mode: iptables
		clientConnection:
		  kubeconfig: $STATE/conf/kube-proxy.kubeconfig
		hostnameOverride: $NODE
		bindAddress: 127.0.0.1
		healthzBindAddress: 127.0.0.1:10256
		metricsBindAddress: 127.0.0.1:10249
		clusterCIDR: $POD_CIDR
		# NodePorts only on the cluster's bridge and on loopback (the tests reach
		# the token server at http://127.0.0.1:<nodePort>), never on the host's
		# other interfaces.
		nodePortAddresses: ["$NODE_IP/32", "127.0.0.1/32"]
		iptables:
		  masqueradeAll: true
		  syncPeriod: 10s
		  minSyncPeriod: 0s
		# Leave the host's conntrack settings alone.
		conntrack:
		  maxPerCore: 0
		  min: 0
		  tcpEstablishedTimeout: 0s
		  tcpCloseWaitTimeout: 0s
	EOF
}

# ---------------------------------------------------------------- host network

# Directories outside the state directory that containerd (shim sockets)
# and CNI (results cache) write to: down removes them if they were not
# there before the first start.
HOST_DIRS=(/run/containerd /var/lib/cni /var/log/containers /var/log/pods)

save_sysctls() {
	[[ -f $STATE/host/sysctls ]] && return 0
	local s d
	for d in "${HOST_DIRS[@]}"; do [[ -e $d ]] || echo "$d"; done >"$STATE/host/created-dirs"
	for s in "${SYSCTLS[@]}"; do
		[[ -e /proc/sys/$s ]] && echo "$s $(cat "/proc/sys/$s")"
	done >"$STATE/host/sysctls"
}

restore_sysctls() {
	local s v
	[[ -f $STATE/host/sysctls ]] || return 0
	while read -r s v; do
		if [[ -e /proc/sys/$s ]]; then echo "$v" >"/proc/sys/$s" 2>/dev/null || true; fi
	done <"$STATE/host/sysctls"
	rm -f "$STATE/host/sysctls"
}

net_up() {
	save_sysctls
	if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link add "$BRIDGE" type bridge
	fi
	ip addr show dev "$BRIDGE" | grep -q "inet $NODE_IP/" || ip addr add "$NODE_IP/24" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	# Service addresses route into the bridge, so a packet kube-proxy has not
	# translated stays on this machine instead of taking the default route.
	ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
	echo 1 >/proc/sys/net/ipv4/ip_forward
	echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
	echo 1 >/proc/sys/net/bridge/bridge-nf-call-ip6tables
	# The guard: pods talk to pods and to this host, never further.
	iptables -w -N "$GUARD" 2>/dev/null || iptables -w -F "$GUARD"
	iptables -w -A "$GUARD" -s "$POD_CIDR" -d "$POD_CIDR" -j ACCEPT
	iptables -w -A "$GUARD" -s "$POD_CIDR" -j DROP
	iptables -w -A "$GUARD" -d "$POD_CIDR" -j DROP
	iptables -w -C FORWARD -j "$GUARD" 2>/dev/null || iptables -w -I FORWARD 1 -j "$GUARD"
}

net_down() {
	if ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link set "$BRIDGE" down 2>/dev/null || true
		ip link del "$BRIDGE" 2>/dev/null || true
	fi
	ip route del "$SERVICE_CIDR" 2>/dev/null || true
	while iptables -w -D FORWARD -j "$GUARD" 2>/dev/null; do :; done
	iptables -w -F "$GUARD" 2>/dev/null || true
	iptables -w -X "$GUARD" 2>/dev/null || true
	restore_sysctls
}

# ---------------------------------------------------------------- processes

start() { # name command...
	local name=$1
	shift
	say "starting $name (log: ${STATE#"$root"/}/logs/$name.log)"
	setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null 9>&- &
	echo $! >"$STATE/run/$name.pid"
}

# wait_for name seconds command...: polls the command until it succeeds.
wait_for() {
	local name=$1 timeout=$2 began=$SECONDS
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		if ! alive "$name"; then
			say "$name exited; the end of its log:"
			tail -n 25 "$STATE/logs/$name.log" >&2 || true
			return 1
		fi
		if ((SECONDS - began > timeout)); then
			say "$name was not ready after ${timeout}s; the end of its log:"
			tail -n 25 "$STATE/logs/$name.log" >&2 || true
			return 1
		fi
		sleep 0.5
	done
	say "$name ready ($((SECONDS - began))s)"
}

stop_proc() { # name
	local name=$1 pid i
	pid=$(pid_of "$name")
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "stopping $name (pid $pid): still running after 10s, killing it"
			kill -KILL "$pid" 2>/dev/null || true
		else
			say "stopped $name (pid $pid, $((i / 10)).$((i % 10))s)"
		fi
	fi
	rm -f "$STATE/run/$name.pid"
}

curl_api() { curl -sf --max-time 3 --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" "https://$NODE_IP:$API_PORT$1"; }

start_all() {
	start etcd "$ENVTEST_DIR/etcd" --name gatehouse-cluster --data-dir "$STATE/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "gatehouse-cluster=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
	wait_for etcd 60 curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

	local p=$STATE/pki
	start kube-apiserver "$ENVTEST_DIR/kube-apiserver" \
		--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$API_PORT" \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		--client-ca-file "$p/ca.crt" --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
		--kubelet-client-certificate "$p/apiserver-kubelet-client.crt" --kubelet-client-key "$p/apiserver-kubelet-client.key" \
		--kubelet-preferred-address-types InternalIP \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
		--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
		--allow-privileged=true --profiling=false --v=1
	wait_for kube-apiserver 120 curl_api /readyz

	start containerd "$BIN/containerd" --config "$STATE/containerd/config.toml"
	wait_for containerd 60 "$BIN/ctr" --address "$STATE/containerd/containerd.sock" version
	load_base_images

	start kube-controller-manager "$BIN/kube-controller-manager" \
		--kubeconfig "$STATE/conf/kube-controller-manager.kubeconfig" \
		--authentication-kubeconfig "$STATE/conf/kube-controller-manager.kubeconfig" \
		--authorization-kubeconfig "$STATE/conf/kube-controller-manager.kubeconfig" \
		--bind-address 127.0.0.1 --secure-port 10257 \
		--service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
		--use-service-account-credentials --leader-elect=false \
		--cluster-name gatehouse-cluster --service-cluster-ip-range "$SERVICE_CIDR" \
		--v=1
	start kube-scheduler "$BIN/kube-scheduler" \
		--kubeconfig "$STATE/conf/kube-scheduler.kubeconfig" \
		--authentication-kubeconfig "$STATE/conf/kube-scheduler.kubeconfig" \
		--authorization-kubeconfig "$STATE/conf/kube-scheduler.kubeconfig" \
		--bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --v=1
	start kubelet "$BIN/kubelet" --config "$STATE/conf/kubelet.yaml" \
		--kubeconfig "$STATE/conf/kubelet.kubeconfig" --root-dir "$STATE/kubelet" \
		--node-ip "$NODE_IP" --hostname-override "$NODE" --v=1
	start kube-proxy "$BIN/kube-proxy" --config "$STATE/conf/kube-proxy.yaml" --v=1
	wait_for kube-controller-manager 60 curl -skf --max-time 2 https://127.0.0.1:10257/healthz
	wait_for kube-scheduler 60 curl -skf --max-time 2 https://127.0.0.1:10259/healthz
	wait_for kube-proxy 60 curl -sf --max-time 2 http://127.0.0.1:10256/healthz
	wait_for kubelet 120 node_ready
}

node_ready() {
	[[ $(kc get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

# Images the cluster itself runs: the pod sandbox (pause) and CoreDNS.
load_base_images() {
	local img=$BIN/gatehouse-image out=$STATE/images
	"$img" -tag localhost/gatehouse-cluster/pause:1 -out "$out/pause.tar" -file "$BIN/pause:/pause:0755" -user 65535:65535 -entrypoint /pause 2>/dev/null
	"$img" -tag localhost/gatehouse-cluster/coredns:1 -out "$out/coredns.tar" -file "$BIN/coredns:/coredns:0755" -user 65532:65532 -entrypoint /coredns 2>/dev/null
	load "$out/pause.tar" "$out/coredns.tar"
}

load() {
	local tar out
	for tar in "$@"; do
		out=$("$BIN/ctr" --address "$STATE/containerd/containerd.sock" -n k8s.io images import "$tar" 2>&1) ||
			die "ctr images import $tar failed: $out"
	done
	say "loaded into containerd: $(for tar in "$@"; do basename "$tar"; done | tr '\n' ' ')"
}

addons() {
	kc apply --server-side --force-conflicts -f "$root/hack/cluster/coredns.yaml" >/dev/null
	say "waiting for CoreDNS"
	kc -n kube-system rollout status deployment/coredns --timeout=180s >&2
}

# Stops every process of the cluster, the containers and their shims
# included, and removes their mounts and network namespaces.
stop_all() {
	local c pid
	for c in kube-proxy kube-scheduler kube-controller-manager kubelet; do stop_proc "$c"; done
	# The pods' containers: kill them through runc, with the root the
	# cluster's containerd gives it, so no other runc container is touched.
	if [[ -d $STATE/runc ]] && command -v runc >/dev/null; then
		local ids
		ids=$(runc --root "$STATE/runc/k8s.io" list -q 2>/dev/null || true)
		if [[ -n $ids ]]; then
			say "killing $(wc -w <<<"$ids") containers"
			for c in $ids; do runc --root "$STATE/runc/k8s.io" kill "$c" KILL 2>/dev/null || true; done
			sleep 1
			for c in $ids; do runc --root "$STATE/runc/k8s.io" delete --force "$c" 2>/dev/null || true; done
		fi
	fi
	stop_proc containerd
	# Shims of this cluster's containerd: their binary is bin/cluster's.
	local exe
	for exe in /proc/[0-9]*/exe; do
		[[ $(readlink "$exe" 2>/dev/null) == "$BIN/containerd-shim-runc-v2" ]] || continue
		pid=${exe#/proc/}
		pid=${pid%/exe}
		say "stopping containerd-shim-runc-v2 (pid $pid)"
		kill -KILL "$pid" 2>/dev/null || true
	done
	stop_proc kube-apiserver
	stop_proc etcd
	unmount_all
}

# Everything but the state directory: processes, mounts, kube-proxy's and
# the guard's iptables rules, the bridge, the host settings.
teardown() {
	stop_all
	if [[ -x $BIN/kube-proxy ]]; then
		# kube-proxy's own chains and nftables tables.
		"$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
	fi
	kube_chains_down
	net_down
}

# The kubelet's chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY,
# KUBE-IPTABLES-HINT) and whatever of kube-proxy's is left: every KUBE-*
# chain and every rule that jumps to one, in iptables and ip6tables.
kube_chains_down() {
	local ipt table rule chain
	for ipt in iptables ip6tables; do
		command -v "$ipt" >/dev/null || continue
		for table in filter nat mangle raw; do
			"$ipt" -w -t "$table" -S >/dev/null 2>&1 || continue
			while read -r rule; do
				eval "$ipt -w -t $table -D ${rule#-A }" 2>/dev/null || true
			done < <("$ipt" -w -t "$table" -S | grep -E '^-A [^ ]+ .*-j KUBE-' | grep -vE '^-A KUBE-')
			for chain in $("$ipt" -w -t "$table" -S | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
				"$ipt" -w -t "$table" -F "$chain" 2>/dev/null || true
			done
			for chain in $("$ipt" -w -t "$table" -S | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
				"$ipt" -w -t "$table" -X "$chain" 2>/dev/null || true
			done
		done
	done
}

unmount_all() {
	local m n=0
	# Deepest first; several passes for mounts stacked on each other.
	for _ in 1 2 3; do
		while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
			n=$((n + 1))
		done < <(awk -v p="$STATE/" 'index($2, p) == 1 {print $2}' /proc/self/mounts | sort -r)
	done
	((n == 0)) || say "unmounted $n mounts under ${STATE#"$root"/}"
}

# ---------------------------------------------------------------- commands

cmd_status() {
	local c any=0
	for c in "${COMPONENTS[@]}"; do
		if alive "$c"; then
			any=1
			echo "$c: running (pid $(pid_of "$c"))"
		else
			echo "$c: stopped"
		fi
	done
	((any)) || return 1
}

all_up() {
	local c
	for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
	curl_api /readyz >/dev/null 2>&1 && node_ready
}

report() {
	say "kubeconfig: $STATE/kubeconfig"
	say "  export KUBECONFIG=$STATE/kubeconfig; $(kubectl_bin) get nodes"
	kc get nodes -o wide --no-headers | awk '{print "cluster: node", $1, $2, $5, "internal-ip", $6, "runtime", $NF}' >&2
	kc get nodes
}

cmd_up() {
	local began=$SECONDS
	check_host
	mkdir -p "$STATE"
	exec 9>"$STATE/.lock"
	flock -n 9 || die "another make cluster or cluster-down is running on ${STATE#"$root"/}"
	ENVTEST_DIR=$("$root/hack/build-envtest.sh")
	"$root/hack/cluster/build.sh"
	if [[ -f $STATE/run/up ]] && all_up; then
		say "the cluster is already running; reusing it"
		report
		return 0
	fi
	if [[ -d $STATE/run ]] && ls "$STATE"/run/*.pid >/dev/null 2>&1; then
		say "a previous cluster is partly running; stopping it first"
		teardown
	fi
	rm -f "$STATE/run/up"
	check_ports
	started=0
	trap 'on_exit' EXIT
	trap 'exit 1' INT TERM
	pki
	configs
	net_up
	start_all
	addons
	started=1
	trap - EXIT INT TERM
	touch "$STATE/run/up"
	say "cluster ready in $((SECONDS - began))s"
	report
}

check_ports() {
	local p busy=()
	for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" 10248 10249 10250 10256 10257 10259; do
		[[ -n $(ss -Hltn "sport = :$p" 2>/dev/null) ]] && busy+=("$p")
	done
	((${#busy[@]} == 0)) || die "TCP ports the cluster needs are in use: ${busy[*]} (ss -ltnp 'sport = :${busy[0]}' names the process). Is a cluster from another checkout running? Run make cluster-down there."
}

on_exit() {
	local rc=$?
	if ((started == 0)); then
		say "make cluster failed; stopping what it started (logs stay in ${STATE#"$root"/}/logs)"
		teardown
		exit $((rc == 0 ? 1 : rc))
	fi
}

cmd_down() {
	mkdir -p "$STATE"
	exec 9>"$STATE/.lock"
	flock -w 60 9 || die "another make cluster is running on ${STATE#"$root"/}"
	[[ $(id -u) == 0 ]] || die "make cluster-down needs root"
	teardown
	# What the kubelet, containerd and CNI leave outside the state directory:
	# log symlinks into it, CNI results and shim sockets of its sandboxes.
	find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
	local sandbox d
	for sandbox in "$STATE/containerd/root/io.containerd.grpc.v1.cri/sandboxes"/*; do
		[[ -e $sandbox ]] || continue
		rm -f /var/lib/cni/results/*-"${sandbox##*/}"-* 2>/dev/null || true
	done
	if [[ -f $STATE/host/created-dirs ]]; then
		while read -r d; do
			[[ -n $d && -d $d ]] || continue
			# Only empty directories, and the shim socket directory of
			# containerd (its sockets die with the shims).
			find "$d" -depth -type s -path '/run/containerd/s/*' -delete 2>/dev/null || true
			find "$d" -depth -type d -empty -delete 2>/dev/null || true
		done <"$STATE/host/created-dirs"
	fi
	local c
	for c in /sys/fs/cgroup/*/k8s.io /sys/fs/cgroup/*/kubepods*; do
		if [[ -d $c ]]; then find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
	done
	exec 9>&-
	rm -rf "$STATE"
	say "cluster removed: no processes, mounts, network namespaces, bridge or iptables rules of it remain"
}

cmd_load() {
	ENVTEST_DIR=$("$root/hack/build-envtest.sh" 2>/dev/null)
	alive containerd || die "the cluster is not running: make cluster"
	load "$@"
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
load)
	shift
	cmd_load "$@"
	;;
*) die "usage: $0 up|down|status|load TAR..." ;;
esac
