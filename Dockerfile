# Build: docker build -t service-controller-manager:0.1.0 .
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=optional
COPY tsconfig.json tsconfig.build.json ./
COPY cmd cmd
COPY controllers controllers
COPY shared shared
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
USER 65532:65532
# Heap sized for the Deployment's 512Mi limit (bench/processes.ts OURS_NODE_FLAGS holds the same
# flag; raise it with the limit for very large clusters).
ENTRYPOINT ["node", "--max-old-space-size=256", "--max-semi-space-size=16", "dist/cmd/manager.js"]
