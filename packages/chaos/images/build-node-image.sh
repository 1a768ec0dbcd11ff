#!/bin/sh
# Build the docker backend's node image, rift-node, from nothing but a Debian mirror.
#
# This is the same recipe as rift_chaos.remote._docker_image.ensure_image(), which the
# docker backend and its tests run automatically (with caching); use this script to
# build by hand or to see what the image contains. Needs root, debootstrap and a
# running Docker daemon; no image registry is used.
#
#   sudo packages/chaos/images/build-node-image.sh            # tag printed at the end
#
# Environment: RIFT_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# RIFT_CACHE_DIR (default /var/cache/rift) where the rootfs tarball is kept.
set -eu

python=${PYTHON:-python3}
exec "$python" -c '
from rift_chaos.remote._docker_daemon import ensure_daemon
from rift_chaos.remote._docker_image import ensure_image
print(ensure_image(ensure_daemon()))
'
