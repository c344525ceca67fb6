#!/bin/sh
# Container entry point: start each process with an empty Prometheus multiprocess directory (stale files
# of a previous run would be summed into the new one's metrics), then run the given command.
set -eu
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete
fi
exec "$@"
