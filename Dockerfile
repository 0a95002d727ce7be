# Build: make image (docker build -t service-controller-manager:<package.json version> .);
# without a container engine, make image-check lays this file out on the host and runs it.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the only install script is the `node` devDependency's (it pins Node 24 for the
# repo by downloading a Node binary); the base image already is Node 24, so it would only fetch a
# second copy. No production dependency has an install script. Optional dependencies stay: esbuild's
# binary for this platform is one.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY cmd cmd
COPY controllers controllers
COPY shared shared
COPY hack/bundle.ts hack/
# `npm run build`'s two steps (type check, then hack/bundle.ts's esbuild bundle into dist/cmd/)
# through the base image's node, not npm: npm puts node_modules/.bin first on PATH, where the
# `node` devDependency's un-installed stub would shadow it.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json --noEmit && node hack/bundle.ts && npm prune --omit=dev --ignore-scripts

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
