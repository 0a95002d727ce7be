/**
 * `npm run build` after the type check: bundles the manager's two entry points (cmd/manager.ts and
 * the webhook worker's cmd/webhook.ts) into dist/cmd/ with esbuild, so a process loads only the
 * code it uses. `@kubernetes/client-node`'s index loads every generated API of every group (68)
 * and its KubeConfig imports that index; bundled, only the 8 groups we call are left, and the
 * process starts at about 116 MiB RSS instead of 141 (docs/PERFORMANCE.md section 11). The output
 * paths are the ones tsc wrote before (dist/cmd/manager.js, dist/cmd/webhook.js), so the
 * Dockerfile's ENTRYPOINT, the bench and the worker's `./webhook.js` URL are unchanged.
 *
 * Not minified, so stack traces name our functions; the source map is written beside the bundle
 * for `node --enable-source-maps` when debugging (it costs about 20 MiB, so production runs
 * without it). The banner gives the bundled CommonJS dependencies (undici, ws, ...) a `require`.
 */
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

// A fresh dist/: files an older build (or tsc) left there must not ship.
rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: ['cmd/manager.ts', 'cmd/webhook.ts'],
  outdir: 'dist/cmd',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  sourcemap: true,
  logLevel: 'warning',
  banner: {
    js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);",
  },
});
