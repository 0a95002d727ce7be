/** The version reported in the user agent, logs and build_info; read from package.json once. */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  // From sources the package root is one level up; from dist/ it is two.
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'service-controller-manager' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return 'unknown';
}

export const VERSION = readVersion();
export const USER_AGENT = `service-controller-manager/${VERSION}`;
