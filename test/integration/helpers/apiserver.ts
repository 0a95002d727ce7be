/**
 * The API server as a neutral observer: its own Prometheus metrics, read over HTTPS with the
 * control plane's admin certificate.
 */
import { Agent, fetch } from 'undici';
import type { ControlPlane } from '../../../shared/localcontrolplane/index.ts';

export interface ApiServerMetrics {
  /** Sum of the samples of `name` whose labels include every given label. */
  sum(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export function apiServerMetrics(cp: ControlPlane): ApiServerMetrics {
  const agent = new Agent({
    connect: { ca: cp.certs.caCertPem, cert: cp.certs.adminCertPem, key: cp.certs.adminKeyPem },
  });
  return {
    sum: async (name, labels = {}) => {
      const text = await (await fetch(`${cp.apiServerUrl}/metrics`, { dispatcher: agent })).text();
      let total = 0;
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const have = Object.fromEntries(
          [...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]),
        );
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3]);
      }
      return total;
    },
    close: () => agent.close(),
  };
}
