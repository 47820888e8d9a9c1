#!/usr/local/bin/busybox sh
# The image's entrypoint: maps the first argument to a command and execs it, so that the
# command (not this shell) is PID 1 and receives SIGTERM from `docker stop` / the kubelet.
#
#   (no argument) | serve [ARGS]   mosaic serve  (config: $MOSAIC_CONFIG, listen: $MOSAIC_LISTEN)
#   -...                           mosaic serve -...   (e.g. `--listen 0.0.0.0:9000`)
#   demo [ARGS]                    mosaic demo --host 0.0.0.0 [ARGS]  (mock bank + gateway)
#   check|schema|help [ARGS]       mosaic check|schema|help [ARGS]
#   mock-bank [ARGS]               the mock bank's five services alone
#   anything else                  run as is, e.g. `/usr/local/bin/busybox sh` to look around
set -eu

MOSAIC=/usr/local/bin/mosaic

if [ "$#" -eq 0 ]; then
    set -- serve
fi

case "$1" in
    serve | check | schema | help | --help | -h | --version | -V)
        exec "$MOSAIC" "$@"
        ;;
    demo)
        shift
        # Inside a container the demo must listen on all interfaces to be reachable through a
        # published port; an explicit --host wins.
        for arg in "$@"; do
            case "$arg" in
                --host | --host=*) exec "$MOSAIC" demo "$@" ;;
            esac
        done
        exec "$MOSAIC" demo --host "${MOSAIC_DEMO_HOST:-0.0.0.0}" "$@"
        ;;
    mock-bank)
        shift
        exec /usr/local/bin/mock-bank "$@"
        ;;
    -*)
        exec "$MOSAIC" serve "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
