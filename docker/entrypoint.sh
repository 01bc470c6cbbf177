#!/bin/sh
# The image's entrypoint: run one ttsbatch process, or check its health.
#
#   api [ARGS]      ttsbatch api --host 0.0.0.0 --port 8000 [ARGS]
#   worker [ARGS]   ttsbatch worker [ARGS]          (Celery worker; see `ttsbatch worker --help`)
#   beat [ARGS]     ttsbatch beat [ARGS]            (celery-redbeat scheduler: run exactly one)
#   create-bucket   create the bucket of TTSBATCH_STORE unless it exists (compose's init step)
#   healthcheck     the HEALTHCHECK of whichever of the above this container runs
#   anything else   run as given (e.g. `ttsbatch status JOB`, `sh`)
set -eu

ROLE_FILE="${TMPDIR:-/tmp}/ttsbatch.role"

remember() {
    # The HEALTHCHECK runs in a separate process: tell it which role this container has.
    printf '%s\n' "$1" > "$ROLE_FILE" 2>/dev/null || true
}

role="${1:-api}"
[ "$#" -gt 0 ] && shift

case "$role" in
    api)
        remember api
        exec ttsbatch api --host 0.0.0.0 --port 8000 "$@"
        ;;
    worker)
        remember worker
        exec ttsbatch worker "$@"
        ;;
    beat)
        remember beat
        exec ttsbatch beat "$@"
        ;;
    create-bucket)
        exec python -c '
from ttsbatch.settings import Settings
from ttsbatch.storage.s3 import S3Store

store = S3Store.from_url(Settings().store)
store.ensure_bucket()
print(f"bucket {store.bucket} is ready")
'
        ;;
    healthcheck)
        case "$(cat "$ROLE_FILE" 2>/dev/null || true)" in
            api)
                exec python -c '
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:8000/healthz", timeout=4) as answer:
    sys.exit(0 if answer.status == 200 else 1)
'
                ;;
            worker) exec python -m worker.health ;;
            *) exit 0 ;;  # beat and one-off commands: the container lives as long as its process
        esac
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
