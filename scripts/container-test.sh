#!/usr/bin/env bash
# Tests the container contract for real with rootful podman, offline.
#
# No registry is reachable, so the Dockerfile's base images cannot be pulled. Instead this script
#   1. builds `mosaic` and `mock-bank` (cargo build --release),
#   2. makes a local stand-in for gcr.io/distroless/cc-debian12:nonroot from this machine's
#      Debian 12 files: the binaries' shared libraries (glibc, libgcc_s), CA certificates,
#      /etc/passwd with nonroot (65532), /tmp and /home/nonroot; `podman import`ed,
#   3. builds the Dockerfile's FINAL STAGE itself (from its last FROM to the end) on that base:
#      each `COPY --from=STAGE` is fed the local equivalent (the release binaries, Debian's
#      static busybox), every other instruction (USER, ENV, EXPOSE, HEALTHCHECK, ENTRYPOINT,
#      CMD, LABEL, COPY from the context) is used verbatim,
#   4. runs it hardened as Kubernetes would (--read-only, --cap-drop ALL, no-new-privileges) and
#      checks: /livez /readyz /healthz on 8080, /metrics on the admin port 9090, both bound to
#      0.0.0.0, JSON logs, the warm-up of the baked examples (/etc/mosaic/examples: one operation
#      per schema/examples/*.graphql compiled before ready), the HEALTHCHECK, a non-root PID 1
#      that is mosaic itself (not a shell),
#      and that `podman stop` (SIGTERM) drains (readiness 503 while still live, in-flight requests
#      finished) and exits 0 before its deadline; the same for `demo` and `mock-bank`.
#
# Usage: scripts/container-test.sh
# Environment:
#   MOSAIC_CONTAINER_TEST_ALLOW_SKIP=1  where podman cannot run containers at all, print the
#                                       banner and exit 0 (default: exit 1)
#   MOSAIC_CONTAINER_TEST_NO_BUILD=1    use target/release/{mosaic,mock-bank} as they are
#   MOSAIC_CONTAINER_TEST_BIN_DIR=DIR   use DIR/{mosaic,mock-bank} as they are (implies NO_BUILD;
#                                       scripts/test.sh passes the test build's target/debug)
#   MOSAIC_CONTAINER_TEST_KEEP=1        keep the temporary podman root (for debugging)
#
# Podman runs with --runtime runc, explicit --ulimit nofile/nproc, `build --isolation chroot`,
# the vfs driver, and all its storage under a temporary --root, removed at the end. Containers
# run with --network none and are probed from the host inside their network namespace
# (nsenter -n + curl): no bridge, no iptables, no published port on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ALLOW_SKIP=${MOSAIC_CONTAINER_TEST_ALLOW_SKIP:-0}
STARTUP_DEADLINE=30   # seconds for /readyz to answer 200 after start
STOP_TIMEOUT=40       # podman stop's SIGKILL deadline; a graceful exit happens far sooner

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
PASSED=0
FAILED=0
FAILURES=()
pass() { PASSED=$((PASSED + 1)); printf '    ok    %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$*"); printf '    FAIL  %s\n' "$*"; }
check() { # check "description" command...
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

banner() {
    local line='##########################################################################'
    printf '\n%s\n' "$line" >&2
    for l in "$@"; do printf '##  %s\n' "$l" >&2; done
    printf '%s\n\n' "$line" >&2
}

# Podman (or this machine) cannot run containers: say so loudly; fail unless told to tolerate it.
cannot_run() {
    if [[ $ALLOW_SKIP == 1 ]]; then
        banner "CONTAINER TEST NOT RUN: $*" \
            "MOSAIC_CONTAINER_TEST_ALLOW_SKIP=1 tolerates this: exiting 0." \
            "Nothing about the image was verified."
        exit 0
    fi
    banner "CONTAINER TEST CANNOT RUN: $*" \
        "Failing. Set MOSAIC_CONTAINER_TEST_ALLOW_SKIP=1 to tolerate a machine without podman."
    exit 1
}

# ---------------------------------------------------------------------------------------------
step "prerequisites"
[[ $(id -u) == 0 ]] || cannot_run "rootful podman needs root (uid $(id -u))"
[[ $(uname -s) == Linux ]] || cannot_run "not Linux"
need_pkgs=()
command -v podman >/dev/null || need_pkgs+=(podman)
command -v runc >/dev/null || need_pkgs+=(runc)
[[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v nsenter >/dev/null || need_pkgs+=(util-linux)
command -v python3 >/dev/null || need_pkgs+=(python3)
# The Debian packages this test uses, all installed together when any is missing.
if ((${#need_pkgs[@]})); then
    note "missing ${need_pkgs[*]}: installing the test's Debian packages (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq || cannot_run "apt-get update failed"
    timeout 600 apt-get install -y -qq --no-install-recommends podman runc busybox-static curl util-linux python3 \
        >/dev/null || cannot_run "apt-get install of the test's Debian packages failed"
fi
BUSYBOX=/bin/busybox
ldd "$BUSYBOX" >/dev/null 2>&1 && cannot_run "$BUSYBOX is not static (install busybox-static)"
note "$(podman --version), $(runc --version | head -1)"

# ulimits: explicit (runc refuses limits above the caller's hard limits, and the defaults podman
# would pick need not fit this machine).
nofile_hard=$(ulimit -Hn)
nproc_hard=$(ulimit -Hu)
nofile=65536
nproc=4096
[[ $nofile_hard != unlimited && $nofile_hard -lt $nofile ]] && nofile=$nofile_hard
[[ $nproc_hard != unlimited && $nproc_hard -lt $nproc ]] && nproc=$nproc_hard

# ---------------------------------------------------------------------------------------------
step "binaries"
BIN_DIR=${MOSAIC_CONTAINER_TEST_BIN_DIR:-target/release}
if [[ ${MOSAIC_CONTAINER_TEST_NO_BUILD:-0} != 1 && -z ${MOSAIC_CONTAINER_TEST_BIN_DIR:-} ]]; then
    timeout 1800 cargo build --release --locked -p mosaic -p mosaic-mock-bank
fi
for b in mosaic mock-bank; do
    [[ -x $BIN_DIR/$b ]] || { echo "$BIN_DIR/$b is missing" >&2; exit 1; }
done
note "$("$BIN_DIR"/mosaic --version) from $BIN_DIR"

# Durations from the baked config (schema/mosaic.toml), with the binary's defaults.
read -r DRAIN_DELAY SHUTDOWN_TIMEOUT < <(python3 - schema/mosaic.toml <<'EOF'
import re, sys, tomllib
server = tomllib.load(open(sys.argv[1], "rb")).get("server", {})
def secs(v):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*", v)
    if not m:
        sys.exit(f"cannot read duration {v!r}")
    return float(m[1]) * {"ms": 0.001, "s": 1, "m": 60}[m[2]]
print(secs(server.get("drain_delay", "5s")), secs(server.get("shutdown_timeout", "20s")))
EOF
)
note "drain_delay ${DRAIN_DELAY}s, shutdown_timeout ${SHUTDOWN_TIMEOUT}s"

# ---------------------------------------------------------------------------------------------
T=$(mktemp -d /tmp/mosaic-container-test.XXXXXX)
PODMAN=(podman --root "$T/storage" --runroot "$T/run" --tmpdir "$T/libpod" --storage-driver vfs
    --cgroup-manager cgroupfs --events-backend file --runtime runc)
p() { timeout "${PTIMEOUT:-120}" "${PODMAN[@]}" "$@"; }
CONTAINERS=()

cleanup() {
    local rc=$?
    set +e
    if [[ ${MOSAIC_CONTAINER_TEST_KEEP:-0} == 1 ]]; then
        timeout 60 "${PODMAN[@]}" stop -a -t 0 >/dev/null 2>&1
        note "kept $T; look with: ${PODMAN[*]} ps -a; remove it with: ${PODMAN[*]} rm -af; ${PODMAN[*]} rmi -af; rm -rf $T"
    else
        for c in "${CONTAINERS[@]}"; do
            timeout 60 "${PODMAN[@]}" rm -f -t 0 "$c" >/dev/null 2>&1
        done
        timeout 60 "${PODMAN[@]}" rm -a -f -t 0 >/dev/null 2>&1
        timeout 120 "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1
        # Anything still mounted under the temporary root (there should be nothing) goes first.
        findmnt -rn -o TARGET | grep -F "$T/" | sort -r | while read -r m; do umount -l "$m"; done
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "can podman run a container here?"
mkdir -p "$T/smoke"
cp "$BUSYBOX" "$T/smoke/busybox"
tar -C "$T/smoke" -cf "$T/smoke.tar" busybox
p import "$T/smoke.tar" localhost/mosaic-smoke:test >/dev/null 2>"$T/smoke.err" ||
    cannot_run "podman import failed: $(tail -3 "$T/smoke.err")"
if ! out=$(p run --rm --network none --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" \
    localhost/mosaic-smoke:test /busybox echo container-ok 2>&1) || [[ $out != *container-ok* ]]; then
    cannot_run "podman run failed: $(tail -3 <<<"$out")"
fi
note "yes"

# ---------------------------------------------------------------------------------------------
step "a local stand-in for gcr.io/distroless/cc-debian12:nonroot"
RFS=$T/base-rootfs
mkdir -p "$RFS"/{etc/ssl/certs,tmp,home/nonroot,usr/local/bin,var/tmp}
chmod 1777 "$RFS/tmp" "$RFS/var/tmp"
chown 65532:65532 "$RFS/home/nonroot"
# The shared libraries the binaries load, at the paths the loader looks for them.
ldd "$BIN_DIR/mosaic" "$BIN_DIR/mock-bank" |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
    while read -r lib; do
        mkdir -p "$RFS$(dirname "$lib")"
        cp -L "$lib" "$RFS$lib"
    done
cp -L /etc/ssl/certs/ca-certificates.crt "$RFS/etc/ssl/certs/"
cat >"$RFS/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$RFS/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
printf 'hosts: files dns\n' >"$RFS/etc/nsswitch.conf"
cp /etc/os-release "$RFS/etc/os-release"
tar -C "$RFS" --numeric-owner -cf "$T/base.tar" .
p import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'USER 65532:65532' \
    --change 'WORKDIR /home/nonroot' \
    "$T/base.tar" localhost/mosaic-base:test >/dev/null
note "$(find "$RFS" -type f | wc -l) files: $(find "$RFS" -name '*.so*' -printf '%f ' )"

# ---------------------------------------------------------------------------------------------
step "the Dockerfile's final stage on that base"
CTX=$T/context
mkdir -p "$CTX"
# Local equivalents of what the final stage copies from other stages.
stage_source() { # STAGE PATH -> local file or directory
    case "$1:$2" in
        busybox:/bin/busybox) echo "$BUSYBOX" ;;
        builder:/out/bin/ | builder:/out/bin)
            mkdir -p "$T/out-bin"
            cp "$BIN_DIR/mosaic" "$BIN_DIR/mock-bank" "$T/out-bin/"
            echo "$T/out-bin/"
            ;;
        *) return 1 ;;
    esac
}
python3 - Dockerfile "$T/Containerfile" "$T/copies" <<'EOF'
# Writes the final stage with `FROM localhost/mosaic-base:test` and every COPY source rewritten
# to a path in the test's build context; lists the files to put there (kind, stage, source, dest).
import re, shlex, sys
src, out, copies = sys.argv[1:4]
lines, cur = [], ""
for raw in open(src):
    s = raw.rstrip("\n")
    if not cur and (not s.strip() or s.lstrip().startswith("#")):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    cur += s
    lines.append(cur.strip())
    cur = ""
starts = [i for i, l in enumerate(lines) if re.match(r"(?i)FROM\s", l)]
if not starts:
    sys.exit("no FROM in the Dockerfile")
stage = lines[starts[-1]:]
m = re.match(r"(?i)FROM\s+(?:--platform=\S+\s+)?(\S+)(\s+AS\s+\S+)?\s*$", stage[0])
if not m:
    sys.exit(f"cannot read {stage[0]!r}")
result, todo = [f"FROM localhost/mosaic-base:test{m[2] or ''}"], []
for l in stage[1:]:
    word = l.split(None, 1)[0].upper()
    if word in ("RUN", "ADD"):
        sys.exit(f"the final stage has {word}: container-test.sh cannot reproduce it offline: {l!r}")
    if word != "COPY":
        result.append(l)
        continue
    rest = l.split(None, 1)[1]
    if rest.lstrip().startswith("["):
        sys.exit(f"JSON-form COPY is not supported here: {l!r}")
    args = shlex.split(rest)
    flags = [a for a in args if a.startswith("--")]
    paths = [a for a in args if not a.startswith("--")]
    frm = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
    flags = [f for f in flags if not f.startswith("--from=")]
    *sources, dest = paths
    new = []
    for s in sources:
        if frm:
            rel = f"from/{frm}/{s.lstrip('/')}"
            todo.append(f"stage\t{frm}\t{s}\t{rel}")
        else:
            rel = s
            todo.append(f"context\t-\t{s}\t{rel}")
        new.append(rel)
    result.append(" ".join(["COPY", *flags, *new, dest]))
open(out, "w").write("\n".join(result) + "\n")
open(copies, "w").write("\n".join(todo) + "\n")
EOF
while IFS=$'\t' read -r kind stage srcpath rel; do
    [[ -n $kind ]] || continue
    mkdir -p "$CTX/$(dirname "${rel%/}")"
    if [[ $kind == context ]]; then
        cp -a "$ROOT/$srcpath" "$CTX/$rel"
    else
        local_src=$(stage_source "$stage" "$srcpath") || {
            echo "the final stage copies $srcpath from stage '$stage': teach stage_source() in $0 where that is" >&2
            exit 1
        }
        if [[ -d $local_src ]]; then
            mkdir -p "$CTX/$rel"
            cp -a "$local_src/." "$CTX/$rel"
        else
            cp -a "$local_src" "$CTX/$rel"
        fi
    fi
done <"$T/copies"
sed 's/^/    | /' "$T/Containerfile"
IMAGE=localhost/mosaic:container-test
PTIMEOUT=600 p build --isolation chroot --format docker --pull=never -t "$IMAGE" -f "$T/Containerfile" "$CTX" \
    >"$T/build.log" 2>&1 || { tail -30 "$T/build.log"; echo "podman build failed" >&2; exit 1; }
note "built $IMAGE ($(p image inspect --format '{{.Size}}' "$IMAGE") bytes)"

step "image configuration"
inspect() { p image inspect --format "$1" "$IMAGE"; }
check "runs as the numeric non-root user 65532 ($(inspect '{{.Config.User}}'))" \
    test "$(inspect '{{.Config.User}}')" = "65532:65532"
# shellcheck disable=SC2016 # a Go template, not a shell expansion
exposed=$(inspect '{{range $k, $v := .Config.ExposedPorts}}{{$k}} {{end}}')
check "exposes 8080 and 9090 ($exposed)" grep -q '8080/tcp.*9090/tcp\|9090/tcp.*8080/tcp' <<<"$exposed"
check "has a HEALTHCHECK ($(inspect '{{json .Config.Healthcheck.Test}}'))" \
    grep -q '/readyz' <<<"$(inspect '{{json .Config.Healthcheck}}')"
check "has OCI labels" grep -q 'org.opencontainers.image.title' <<<"$(inspect '{{json .Config.Labels}}')"
check "default command is serve ($(inspect '{{json .Config.Entrypoint}} {{json .Config.Cmd}}'))" \
    test "$(inspect '{{json .Config.Cmd}}')" = '["serve"]'

# ---------------------------------------------------------------------------------------------
# Helpers over a running container.
run_container() { # NAME --network=X [ARGS after the image...]
    local name=$1 net=$2
    shift 2
    CONTAINERS+=("$name")
    # --health-interval=disable: no systemd timer here; the check runs it with `podman healthcheck run`.
    p run -d --name "$name" --health-interval=disable \
        --read-only --cap-drop ALL --security-opt no-new-privileges \
        --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" \
        "$net" "$IMAGE" "$@" >/dev/null 2>"$T/run-$name.err" || {
        cat "$T/run-$name.err" >&2
        return 1
    }
}
host_pid() { p inspect --format '{{.State.Pid}}' "$1"; }
# curl inside the container's network namespace (its loopback is reachable only from there).
ccurl() { # NAME curl-args...
    local name=$1 pid
    shift
    pid=$(host_pid "$name") && [[ $pid != 0 ]] || return 1
    nsenter -t "$pid" -n -- curl -sS --max-time 5 "$@"
}
status_of() { ccurl "$1" -o /dev/null -w '%{http_code}' "$2" 2>/dev/null || echo 000; }
wait_status() { # NAME URL CODE DEADLINE
    local end=$((SECONDS + $4)) s
    while ((SECONDS < end)); do
        s=$(status_of "$1" "$2")
        [[ $s == "$3" ]] && return 0
        [[ $(p inspect --format '{{.State.Running}}' "$1") == true ]] || return 1
        sleep 0.3
    done
    return 1
}
listening_on_all() { # NAME PORT: a listener on 0.0.0.0:PORT or [::]:PORT in the container
    local pid hex
    pid=$(host_pid "$1")
    hex=$(printf '%04X' "$2")
    grep -qE "^ *[0-9]+: (00000000|00000000000000000000000000000000):$hex [0-9A-F:]+ 0A " \
        "/proc/$pid/net/tcp" "/proc/$pid/net/tcp6" 2>/dev/null
}
healthz_is_json() { [[ $(ccurl "$1" http://127.0.0.1:8080/healthz) == "{"* ]]; }
example_query() { # NAME: schema/examples/gangnam-total.graphql answers data, no errors
    local answer
    answer=$(python3 -c 'import json,sys; print(json.dumps({"query": open(sys.argv[1]).read()}))' \
        schema/examples/gangnam-total.graphql |
        ccurl "$1" -H 'content-type: application/json' --data-binary @- http://127.0.0.1:8080/graphql 2>&1) || true
    python3 -c '
import json, sys
try:
    a = json.loads(sys.argv[1])
except ValueError:
    a = {}
ok = isinstance(a, dict) and (a.get("data") or {}).get("district") and not a.get("errors")
if not ok:
    print("      answer:", sys.argv[1][:300])
sys.exit(not ok)' "$answer"
}
not_root_in_top() { [[ -n $1 ]] && ! grep -qw root <<<"$1"; }
bank_service_ok() {
    [[ $(status_of mosaic-bank "http://127.0.0.1:$1/health") == 200 ]] && listening_on_all mosaic-bank "$1"
}
dump_logs() { note "--- logs of $1 (last 40 lines) ---"; p logs "$1" 2>&1 | tail -40 | sed 's/^/    | /'; }

process_checks() { # NAME EXPECTED-COMM
    local name=$1 comm=$2 pid uids
    pid=$(host_pid "$name")
    uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
    check "PID 1 runs as uid 65532, not root (Uid: $uids)" test "$uids" = "65532 65532 65532 65532"
    check "PID 1 is $comm itself, not the entrypoint shell ($(cat "/proc/$pid/comm"))" \
        test "$(cat "/proc/$pid/comm")" = "$comm"
    check "no capabilities and no_new_privs ($(awk '/^CapEff:|^NoNewPrivs:/ { printf "%s%s ", $1, $2 }' "/proc/$pid/status"))" \
        grep -qE '^NoNewPrivs:\s+1' "/proc/$pid/status"
    local top
    top=$(p top "$name" user huser 2>/dev/null | tail -n +2 | tr -s ' ')
    check "podman top agrees (user huser: ${top:-nothing})" not_root_in_top "$top"
}

json_stderr_logs() { # NAME: every line on stderr is a JSON object
    p logs "$1" 2>&1 >/dev/null | python3 -c '
import json, sys
def is_object(line):
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
lines = [l for l in sys.stdin.read().splitlines() if l.strip()]
bad = [l for l in lines if not is_object(l)]
if not lines or bad:
    print("      no log lines" if not lines else "      not JSON: " + bad[0][:160])
    sys.exit(1)
'
}

# The operations in schema/examples/ (the image's /etc/mosaic/examples/, which the baked config's
# `[server] warmup = ["examples"]` compiles before ready): one per query/mutation/subscription.
EXAMPLE_OPERATIONS=$(cat schema/examples/*.graphql | grep -cE '^[[:space:]]*(query|mutation|subscription)\b' || true)
warmed_up() { # NAME N: the log line "warmed up: ..." says operations = N
    p logs "$1" 2>&1 | python3 -c '
import json, sys
want = int(sys.argv[1])
seen = []
for line in sys.stdin:
    try:
        fields = json.loads(line).get("fields") or {}
    except (ValueError, AttributeError):
        continue
    if str(fields.get("message", "")).startswith("warmed up"):
        seen.append(fields.get("operations"))
if want not in seen:
    print("      warm-up log lines: operations =", seen or "none logged", f"(want {want})")
    sys.exit(1)
' "$2"
}

# podman stop (SIGTERM to PID 1) while probing: readiness must turn 503 while /livez still
# answers, and the container must exit 0 well before the SIGKILL deadline.
graceful_stop() { # NAME PORT MIN_SECONDS MAX_SECONDS
    local name=$1 port=$2 min=$3 max=$4 t0 stopper elapsed rc saw_503_live=no r l end
    t0=$(date +%s.%N)
    p stop -t "$STOP_TIMEOUT" "$name" >/dev/null 2>&1 &
    stopper=$!
    if [[ $port != - ]]; then
        end=$((SECONDS + ${max%.*} + 1))
        while ((SECONDS < end)) && kill -0 "$stopper" 2>/dev/null; do
            r=$(status_of "$name" "http://127.0.0.1:$port/readyz")
            l=$(status_of "$name" "http://127.0.0.1:$port/livez")
            if [[ $r == 503 && $l == 200 ]]; then saw_503_live=yes; break; fi
            sleep 0.2
        done
    fi
    wait "$stopper" || true
    elapsed=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")
    rc=$(p inspect --format '{{.State.ExitCode}}' "$name")
    if [[ $port != - ]]; then
        check "after SIGTERM: /readyz 503 while /livez still 200 (draining)" test "$saw_503_live" = yes
    fi
    check "podman stop: exit code 0 (got $rc; 137 = SIGKILLed after ignoring SIGTERM)" test "$rc" = 0
    check "podman stop: exited in ${elapsed}s, within [${min}s, ${max}s] (drain honoured, no SIGKILL)" \
        python3 -c "import sys; sys.exit(not ($min <= $elapsed <= $max))"
}

# ---------------------------------------------------------------------------------------------
step "one-shot commands through the entrypoint"
run_once() {
    p run --rm --network=none --health-interval=disable --read-only --cap-drop ALL \
        --security-opt no-new-privileges --ulimit "nofile=$nofile:$nofile" \
        --ulimit "nproc=$nproc:$nproc" "$IMAGE" "$@" 2>"$T/once.err"
}
check_out=$(run_once check || true)
check "\`check\` validates the baked /etc/mosaic/mosaic.toml and bank.graphql" \
    grep -q "backends:" <<<"$check_out"
version_out=$(run_once --version || true)
check "\`--version\` reaches mosaic ($version_out)" grep -q '^mosaic ' <<<"$version_out"

# ---------------------------------------------------------------------------------------------
step "mock-bank (the compose file's backends): five services on 0.0.0.0"
run_container mosaic-bank --network=none mock-bank --host 0.0.0.0 --base-port 4001 || fail "podman run failed"
bank_up=no
if wait_status mosaic-bank http://127.0.0.1:4005/health 200 "$STARTUP_DEADLINE"; then
    bank_up=yes
    for port in 4001 4002 4003 4004 4005; do
        check "service on 0.0.0.0:$port answers /health" bank_service_ok "$port"
    done
    process_checks mosaic-bank mock-bank
    # shellcheck disable=SC2016 # expanded by the container's shell
    check "the compose file's bank healthcheck command passes (busybox sh + wget)" \
        p exec mosaic-bank /usr/local/bin/busybox sh -c \
        'for p in 4001 4002 4003 4004 4005; do /usr/local/bin/busybox wget -q -O /dev/null http://127.0.0.1:$p/health || exit 1; done'
else
    fail "mock-bank: /health did not answer 200 within ${STARTUP_DEADLINE}s"
    dump_logs mosaic-bank
fi

# ---------------------------------------------------------------------------------------------
step "serve (the default command) over the bank: probes, admin port, user, logs, healthcheck"
# In the bank's network namespace: the baked config's backend URLs (127.0.0.1:4001..4005) reach it.
run_container mosaic-serve --network=container:mosaic-bank || fail "podman run failed"
if wait_status mosaic-serve http://127.0.0.1:8080/readyz 200 "$STARTUP_DEADLINE"; then
    pass "/readyz answers 200"
    check "/livez answers 200" test "$(status_of mosaic-serve http://127.0.0.1:8080/livez)" = 200
    check "/healthz answers 200 with JSON" healthz_is_json mosaic-serve
    check "listens on 0.0.0.0:8080" listening_on_all mosaic-serve 8080
    if [[ $bank_up == yes ]]; then
        check "an example query (GangnamTotal) answers data without errors" example_query mosaic-serve
    fi
    check "admin listener on 0.0.0.0:9090 (MOSAIC_ADMIN_LISTEN)" listening_on_all mosaic-serve 9090
    metrics=$(ccurl mosaic-serve http://127.0.0.1:9090/metrics 2>&1 || true)
    check "/metrics on 9090 answers Prometheus text" grep -q '^# TYPE mosaic_' <<<"$metrics"
    process_checks mosaic-serve mosaic
    check "the image's HEALTHCHECK passes (podman healthcheck run)" p healthcheck run mosaic-serve
    check "logs on stderr are JSON lines (MOSAIC_LOG_FORMAT=json)" json_stderr_logs mosaic-serve
    check "the warm-up compiled the $EXAMPLE_OPERATIONS baked examples (/etc/mosaic/examples) before ready" \
        warmed_up mosaic-serve "$EXAMPLE_OPERATIONS"

    step "serve: podman stop drains (readiness 503, still live, a request in flight answered), exits 0"
    # A request that takes 3s (latency injected into customers) is sent 1s after SIGTERM, inside
    # the drain window: it must be accepted and answered in full.
    if [[ $bank_up == yes ]]; then
        ccurl mosaic-bank -X PUT -H 'content-type: application/json' -d '{"latency_ms":3000}' \
            http://127.0.0.1:4001/_faults >/dev/null || fail "could not inject latency into customers"
        (
            sleep 1
            ccurl mosaic-serve --max-time 20 -H 'content-type: application/json' \
                -d '{"query":"{ customer(id: \"C001\") { name } }"}' \
                http://127.0.0.1:8080/graphql >"$T/inflight.out" 2>&1 || true
        ) &
        inflight=$!
    fi
    graceful_stop mosaic-serve 8080 "$(python3 -c "print($DRAIN_DELAY - 1)")" \
        "$(python3 -c "print($DRAIN_DELAY + 6)")"
    if [[ $bank_up == yes ]]; then
        wait "$inflight" || true
        [[ -s $T/inflight.out ]] || echo "no answer: the container had stopped" >"$T/inflight.out"
        check "the request sent during the drain was answered ($(head -c 100 "$T/inflight.out"))" \
            grep -q '"name"' "$T/inflight.out"
    fi
else
    fail "/readyz did not answer 200 within ${STARTUP_DEADLINE}s"
fi
dump_logs mosaic-serve

if [[ $bank_up == yes ]]; then
    step "mock-bank: podman stop exits 0"
    graceful_stop mosaic-bank - 0 10
fi
dump_logs mosaic-bank

# ---------------------------------------------------------------------------------------------
step "demo (\`docker run IMAGE demo\`): mock bank + gateway, reachable on 0.0.0.0"
run_container mosaic-demo --network=none demo || fail "podman run failed"
if wait_status mosaic-demo http://127.0.0.1:8080/readyz 200 "$STARTUP_DEADLINE"; then
    pass "/readyz answers 200"
    check "the gateway listens on 0.0.0.0:8080 (the entrypoint's --host 0.0.0.0)" \
        listening_on_all mosaic-demo 8080
    check "an example query (GangnamTotal) answers data without errors" example_query mosaic-demo
    process_checks mosaic-demo mosaic
    graceful_stop mosaic-demo 8080 0 "$(python3 -c "print($DRAIN_DELAY + 6)")"
else
    fail "demo: /readyz did not answer 200 within ${STARTUP_DEADLINE}s"
fi
dump_logs mosaic-demo

# ---------------------------------------------------------------------------------------------
step "summary"
for f in "${FAILURES[@]}"; do note "FAILED: $f"; done
echo "container-test: $PASSED passed, $FAILED failed"
((FAILED == 0))
