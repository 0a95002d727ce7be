/**
 * The neutral meter: the API server's own `apiserver_request_total` (write verbs, by resource) and
 * `apiserver_request_body_size_bytes` (bytes written), read over HTTPS with the admin
 * certificate, before and after each step. It counts every client, so a step's figures include
 * only what happened while it ran; the workload's own writes are to pods, nodes, services and
 * namespaces, so the controllers' writes are those to endpoints and endpointslices (and events).
 */
import { Agent, fetch } from 'undici';
import type { ControlPlane } from '../shared/localcontrolplane/index.ts';

export type Counts = Record<string, number>;

const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY']);
const CONTROLLER_RESOURCES = new Set(['endpoints', 'endpointslices', 'events']);

export class ApiMeter {
  private readonly agent: Agent;
  private readonly url: string;

  constructor(cp: ControlPlane) {
    this.agent = new Agent({
      connect: { ca: cp.certs.caCertPem, cert: cp.certs.adminCertPem, key: cp.certs.adminKeyPem },
    });
    this.url = `${cp.apiServerUrl}/metrics`;
  }

  /** "VERB resource" -> requests, and "bytes resource" -> request body bytes, for our resources. */
  async read(): Promise<Counts> {
    const text = await (await fetch(this.url, { dispatcher: this.agent })).text();
    const counts: Counts = {};
    for (const line of text.split('\n')) {
      if (line.startsWith('apiserver_request_total{')) {
        const verb = /verb="(\w+)"/.exec(line)?.[1] ?? '';
        const resource = /resource="([\w.]+)"/.exec(line)?.[1] ?? '';
        const sub = /subresource="(\w*)"/.exec(line)?.[1] ?? '';
        if (!WRITE_VERBS.has(verb) || !CONTROLLER_RESOURCES.has(resource) || sub !== '') continue;
        const key = `${verb} ${resource}`;
        counts[key] = (counts[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
      } else if (line.startsWith('apiserver_request_body_size_bytes_sum{')) {
        const verb = /verb="(\w+)"/.exec(line)?.[1] ?? '';
        const resource = /resource="([\w.]+)"/.exec(line)?.[1] ?? '';
        if (!CONTROLLER_RESOURCES.has(resource) || !['create', 'update', 'patch'].includes(verb)) continue;
        const key = `bytes ${resource}`;
        counts[key] = (counts[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
    return counts;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

export function diff(after: Counts, before: Counts): Counts {
  const out: Counts = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = Math.round(d);
  }
  return out;
}

/** Sum of write requests (not bytes) to endpoints and endpointslices. */
export function totalWrites(c: Counts): number {
  return Object.entries(c)
    .filter(([k]) => !k.startsWith('bytes ') && !k.endsWith(' events'))
    .reduce((n, [, v]) => n + v, 0);
}
