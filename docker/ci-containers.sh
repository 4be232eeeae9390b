#!/usr/bin/env bash
# CI fragment, run by .ci/run after `npm test` when ../shared/tools/offline-images.sh exists: start a Docker engine
# with local stand-ins for the public images (no registry is reachable), run the container smoke test, and always
# stop that engine again.
set -euo pipefail
cd "$(dirname "$0")/.."

tool=$(cd ../shared/tools && pwd)/offline-images.sh
# Node >= 25 binaries need libatomic1, which the stand-in's Debian base lacks: the stand-in for the pinned
# node image runs the host's node instead (>= 20.19, the version the project supports and tests on).
export OFFLINE_IMAGES_NODE=host

started=$SECONDS
stop_engine() {
  "$tool" down || echo "ci: warning: offline-images.sh down failed" >&2
  echo "ci: container stage took $((SECONDS - started)) s"
}
trap stop_engine EXIT

"$tool" up "$PWD"
eval "$("$tool" env)"
echo "ci: stand-ins ready after $((SECONDS - started)) s"
npm run test:containers
