# Flowgate image: compiled JavaScript and production dependencies only, `node` as PID 1 (it handles
# SIGTERM and SIGINT itself and drains; with WORKERS it reaps its own workers), an unprivileged user.
#
# The runtime stage starts from scratch: the `node` binary, the shared libraries it links (glibc,
# libstdc++), a passwd entry for the service user, dist/, the production node_modules and config/.
# No shell, no package manager, no compiler. The base image of the build stage is an argument, so
# the same file builds from a registry (the default) or from a local image
# (deploy/local-base-images.sh makes one from Debian's packages, for machines that reach no registry).
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: install everything, compile TypeScript, drop the devDependencies ---------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# The npm workspace @flowgate/sdk, which the server imports at run time.
COPY packages/sdk/package.json packages/sdk/tsconfig.build.json packages/sdk/README.md ./packages/sdk/
COPY packages/sdk/src ./packages/sdk/src
# --ignore-scripts: nothing the build needs runs install scripts (tsc is plain JavaScript); the
# workspace is compiled explicitly below instead of by the root `prepare` script.
RUN npm ci --no-audit --no-fund --ignore-scripts \
 && npm run build --workspace @flowgate/sdk
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY migrations ./migrations
COPY src ./src
RUN node scripts/build.mjs \
 && npm prune --omit=dev --no-audit --no-fund --ignore-scripts \
 && rm -rf node_modules/.cache node_modules/.package-lock.json dist/.tsbuildinfo \
 && find dist node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.md' \) -delete

# The runtime root: node, the libraries it links (from this stage's Debian), the service user.
RUN set -eu; \
    mkdir -p /runtime/usr/local/bin /runtime/etc /runtime/tmp /runtime/app/keys /runtime/app/data; \
    cp "$(command -v node)" /runtime/usr/local/bin/node; \
    for lib in $(ldd "$(command -v node)" | awk '$2 == "=>" { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }'); do \
      cp --parents -L "$lib" /runtime; \
    done; \
    echo 'flowgate:x:10001:10001:flowgate:/app:/sbin/nologin' > /runtime/etc/passwd; \
    echo 'flowgate:x:10001:' > /runtime/etc/group; \
    chmod 1777 /runtime/tmp; \
    chown 10001:10001 /runtime/app/keys /runtime/app/data

# --- runtime -------------------------------------------------------------------------------------
FROM scratch AS runtime
COPY --from=build /runtime/ /
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages/sdk/package.json ./packages/sdk/package.json
COPY --from=build /src/packages/sdk/dist ./packages/sdk/dist
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY config ./config

# keys/ holds the signing keys (a volume shared by every replica); data/ the embedded database and
# the first-start credentials file (mode 0600) when no DATABASE_URL is set.
ENV PATH=/usr/local/bin \
    NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    METRICS_PORT=9464 \
    KEYS_DIR=/app/keys \
    DATA_DIR=/app/data

USER 10001:10001
# 3000: the service. 9464: /metrics, for the scraper on the internal network; never publish it.
EXPOSE 3000 9464
VOLUME ["/app/keys"]

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Migrations run at every start under an advisory lock, or beforehand as a job:
#   docker run --rm <image> node dist/src/cli/main.js migrate
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]
