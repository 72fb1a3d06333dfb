# Flowgate: the service on Node 24, run with `npm start` (tsx, no build step) as a non-root user.
FROM node:24-slim

WORKDIR /app

# Dependencies first, for layer caching. `npm start` runs TypeScript through tsx (a devDependency),
# so the full lockfile is installed; NODE_ENV=production is set only afterwards for that reason.
COPY package.json package-lock.json ./
# The npm workspace: @flowgate/sdk, compiled by the root `prepare` script during `npm ci`.
COPY packages/sdk/package.json packages/sdk/tsconfig.build.json packages/sdk/README.md ./packages/sdk/
COPY packages/sdk/src ./packages/sdk/src
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY config ./config
COPY migrations ./migrations
COPY src ./src

# keys/ holds the signing keys (mount a volume so every replica and restart shares them);
# data/ is only used by the embedded mode (no DATABASE_URL).
RUN mkdir -p keys data && chown -R node:node keys data

ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    KEYS_DIR=/app/keys \
    DATA_DIR=/app/data

USER node
EXPOSE 3000
VOLUME ["/app/keys"]

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# `npm start` execs node, so SIGTERM from `docker stop` reaches Flowgate (graceful shutdown).
CMD ["npm", "start"]
