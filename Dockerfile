# Flowgate image: compiled JavaScript and production dependencies only, `node` as PID 1 (it handles
# SIGTERM and SIGINT itself and drains; with WORKERS it reaps its own workers), an unprivileged user.
#
# Base images are arguments so that the same file builds from a registry (the defaults) or from
# local images (deploy/local-base-images.sh builds both from Debian's packages, for machines that
# reach no registry). The runtime stage takes only the `node` binary from the build stage: no npm,
# no compiler, no devDependencies.
ARG NODE_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- build: install everything, compile TypeScript, then drop the devDependencies ---------------
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
 && rm -rf node_modules/.cache dist/.tsbuildinfo \
 && find dist -name '*.map' -delete

# --- runtime -----------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=build /usr/local/bin/node /usr/local/bin/node
RUN groupadd --system --gid 10001 flowgate \
 && useradd --system --uid 10001 --gid flowgate --home-dir /app --no-create-home --shell /usr/sbin/nologin flowgate
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages/sdk/package.json ./packages/sdk/package.json
COPY --from=build /src/packages/sdk/dist ./packages/sdk/dist
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY config ./config
# keys/ holds the signing keys (a volume shared by every replica); data/ the embedded database and
# the first-start credentials file (mode 0600) when no DATABASE_URL is set.
RUN mkdir -p keys data && chown flowgate:flowgate keys data

ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    METRICS_PORT=9464 \
    KEYS_DIR=/app/keys \
    DATA_DIR=/app/data

USER flowgate
# 3000: the service. 9464: /metrics, for the scraper on the internal network; never publish it.
EXPOSE 3000 9464
VOLUME ["/app/keys"]

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Migrations: run by every start under an advisory lock, or beforehand as a job:
#   docker run --rm <image> node dist/src/cli/main.js migrate
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]
