#!/usr/bin/env bash
# Builds the base image of the Dockerfile's build stage locally, for machines that reach Debian's
# package mirror but no container registry:
#   localhost/flowgate-base/debian:bookworm-slim   a debootstrap minbase root, docs and caches removed
#   localhost/flowgate-base/node:24-bookworm-slim  the same plus the Node 24 binary and npm
# Then: podman build --format docker --pull=never --isolation=chroot \
#         --build-arg NODE_IMAGE=localhost/flowgate-base/node:24-bookworm-slim -t flowgate .
# Needs root, debootstrap and podman (Debian packages). Node comes from this checkout's node_modules
# (the `node` devDependency pins Node 24), npm from the machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=${WORK_DIR:-$(mktemp -d)}
root="$work/rootfs"
if [ ! -x "$root/bin/sh" ]; then
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log"
fi
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/cache/apt/*.bin \
  "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old "$root"/var/log/*.log
find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'en*' ! -name 'locale.alias' -exec rm -rf {} +
tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - localhost/flowgate-base/debian:bookworm-slim >/dev/null

node_bin=$(readlink -f node_modules/node/bin/node)
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
ctx="$work/node-ctx"
rm -rf "$ctx" && mkdir -p "$ctx"
cp "$node_bin" "$ctx/node"
cp -r "$npm_dir" "$ctx/npm"
# The machine's CA bundle, so npm in the build stage trusts what this machine trusts (a registry
# mirror or a TLS-inspecting proxy). Build stage only: the runtime image does not get it.
cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
cat >"$ctx/Containerfile" <<'CF'
FROM localhost/flowgate-base/debian:bookworm-slim
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && node --version && npm --version
CF
podman build --format docker --pull=never --isolation=chroot -t localhost/flowgate-base/node:24-bookworm-slim "$ctx" >/dev/null
echo "base images ready"
