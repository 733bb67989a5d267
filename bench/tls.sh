#!/usr/bin/env bash
# GET of one object over TLS with a bearer token and RBAC (issue 12's target: >= 0.5x the same
# GET over plain HTTP on loopback, and >= 0.5x nginx serving the same bytes over TLS), the
# three side by side in one run, with wrk on keep-alive connections:
#   trainyard, plain HTTP on loopback (the trusting local mode)
#   trainyard --tls: a minted token of a user whom a RoleBinding gives `view` (not an admin:
#                    RBAC decides every request), TLS 1.3 with the server's ECDSA P-256 key
#   nginx over TLS (one worker) serving a file of the same bytes with the same certificate
# Also: a new TLS connection per request (curl, handshake included) beside plain HTTP.
# D=... wrk seconds (default 5). Everything on loopback; what is started here is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${D:-5}
PY=/usr/bin/python3
KUBECTL=/usr/bin/kubectl

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} (apt-get)"
    apt-get install -y -q "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
make -s build/trainyard

tmp=$(mktemp -d /var/tmp/trainyard-tls-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_file() {
    local i
    for i in $(seq 1 2000); do [ -s "$1" ] && return 0; sleep 0.01; done
    echo "no $1" >&2; return 1
}
wrk_rate() {
    wrk -t1 -c8 -d"${D}s" "$@" | awk '/Requests\/sec/ {printf "%.0f", $2}'
}

echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
pport=$(free_port)
sport=$(free_port)
build/trainyard server --data-dir "$tmp/plain" --listen "127.0.0.1:$pport" --no-pod-network \
    2>"$tmp/plain.log" &
pids+=($!)
build/trainyard server --data-dir "$tmp/secure" --listen "127.0.0.1:$sport" --no-pod-network \
    --tls 2>"$tmp/secure.log" &
pids+=($!)
wait_file "$tmp/plain/kubeconfig"
wait_file "$tmp/secure/kubeconfig"
build/trainyard token create --data-dir "$tmp/secure" --user bench >"$tmp/bench.kubeconfig"
token=$(awk '/token:/ {print $2}' "$tmp/bench.kubeconfig")
cat <<'YAML' | $KUBECTL --kubeconfig "$tmp/secure/kubeconfig" apply -f - >/dev/null
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bench-view, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bench}]
YAML
path=/api/v1/namespaces/default
ca="$tmp/secure/pki/ca.crt"
auth="Authorization: Bearer $token"
# the same object both ways, and a refusal for a path the user may not read
curl -sf --cacert "$ca" -H "$auth" "https://127.0.0.1:$sport$path" -o "$tmp/one.json"
test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" -H "$auth" \
    "https://127.0.0.1:$sport/api/v1/nodes")" = 403

nport=$(free_port)
mkdir -p "$tmp/nginx" "$tmp/www"
cp "$tmp/one.json" "$tmp/www/one.json"
cat >"$tmp/nginx/nginx.conf" <<CONF
user root root;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    default_type application/json;
    server {
        listen 127.0.0.1:$nport ssl;
        ssl_certificate $tmp/secure/pki/apiserver.crt;
        ssl_certificate_key $tmp/secure/pki/apiserver.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $tmp/www;
    }
}
CONF
"$NGINX" -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 1 500); do
    curl -sf --cacert "$ca" -o /dev/null "https://127.0.0.1:$nport/one.json" && break
    sleep 0.01
done

echo "== GET $path ($(stat -c %s "$tmp/one.json") bytes); wrk: 1 thread, 8 keep-alive connections, ${D} s each; one worker each"
r_plain=$(wrk_rate "http://127.0.0.1:$pport$path")
r_tls=$(wrk_rate -H "$auth" "https://127.0.0.1:$sport$path")
r_nginx=$(wrk_rate "https://127.0.0.1:$nport/one.json")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "trainyard, TLS + bearer token + RBAC: $r_tls req/s   [target >= 0.5x each baseline]"
echo "  baseline: trainyard, plain HTTP (loopback): $r_plain req/s (ratio $(ratio "$r_tls" "$r_plain"))"
echo "  baseline: nginx over TLS, file of the same bytes: $r_nginx req/s (ratio $(ratio "$r_tls" "$r_nginx"))"

# a new connection per request: the handshake's cost, as a client that does not keep alive
per_conn_ms() {
    local t0 t1 n=200
    t0=$(date +%s%N)
    for _ in $(seq 1 $n); do curl -sf -o /dev/null "$@"; done
    t1=$(date +%s%N)
    awk -v d=$(( t1 - t0 )) -v n=$n 'BEGIN {printf "%.2f", d / n / 1e6}'
}
echo "== one request per connection (curl, 200 in a row), ms each incl. curl's start"
echo "trainyard TLS + token: $(per_conn_ms --cacert "$ca" -H "$auth" "https://127.0.0.1:$sport$path") ms"
echo "  baseline: trainyard plain: $(per_conn_ms "http://127.0.0.1:$pport$path") ms"
echo "  baseline: nginx TLS: $(per_conn_ms --cacert "$ca" "https://127.0.0.1:$nport/one.json") ms"
