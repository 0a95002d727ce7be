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
/** What the controllers list and watch (the workload only writes). */
const WATCHED_RESOURCES = new Set(['pods', 'services', 'endpoints', 'endpointslices', 'nodes']);

/** The API server's read side, summed over the kinds the controllers watch. */
export interface Reads {
  /** LIST requests (paged lists; a streaming list is a WATCH). */
  lists: number;
  /** Response bytes of those LIST requests. */
  listBytes: number;
  /** WATCH requests, streaming lists included. */
  watches: number;
  /** Bytes of the watch events sent (initial events of streaming lists included). */
  watchEventBytes: number;
}

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

  /** LIST and WATCH requests and the bytes they carried, for the kinds the controllers watch. */
  async reads(): Promise<Reads> {
    const text = await (await fetch(this.url, { dispatcher: this.agent })).text();
    const r: Reads = { lists: 0, listBytes: 0, watches: 0, watchEventBytes: 0 };
    const value = (line: string): number => Number(line.slice(line.lastIndexOf(' ') + 1));
    for (const line of text.split('\n')) {
      const resource = /resource="([\w.]+)"/.exec(line)?.[1] ?? '';
      if (!WATCHED_RESOURCES.has(resource)) continue;
      const verb = /verb="(\w+)"/.exec(line)?.[1];
      if (line.startsWith('apiserver_request_total{')) {
        if (verb === 'LIST') r.lists += value(line);
        if (verb === 'WATCH') r.watches += value(line);
      } else if (line.startsWith('apiserver_response_sizes_sum{') && verb === 'LIST') {
        r.listBytes += value(line);
      } else if (line.startsWith('apiserver_watch_events_sizes_sum{')) {
        r.watchEventBytes += value(line);
      }
    }
    return r;
  }

  /**
   * Write requests to every resource so far, "VERB resource" or "VERB resource/subresource" ->
   * requests (every client, every answer): e.g. "PATCH services/status", "POST events".
   */
  async allWrites(): Promise<Counts> {
    const text = await (await fetch(this.url, { dispatcher: this.agent })).text();
    const counts: Counts = {};
    for (const line of text.split('\n')) {
      if (!line.startsWith('apiserver_request_total{')) continue;
      const verb = /verb="(\w+)"/.exec(line)?.[1] ?? '';
      if (!WRITE_VERBS.has(verb)) continue;
      const resource = /resource="([\w.]+)"/.exec(line)?.[1] ?? '';
      const sub = /subresource="(\w*)"/.exec(line)?.[1] ?? '';
      const key = `${verb} ${resource}${sub === '' ? '' : `/${sub}`}`;
      counts[key] = (counts[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return counts;
  }

  /** The API server's whole /metrics text. */
  async text(): Promise<string> {
    return (await fetch(this.url, { dispatcher: this.agent })).text();
  }

  /**
   * Every request to `resource` (no subresource) the API server answered so far, by verb and
   * code: "PUT 200" -> requests, "PUT 409" -> requests, ...
   */
  async requests(resource: string): Promise<Counts> {
    const text = await (await fetch(this.url, { dispatcher: this.agent })).text();
    const counts: Counts = {};
    for (const line of text.split('\n')) {
      if (!line.startsWith('apiserver_request_total{')) continue;
      if (/resource="([\w.]+)"/.exec(line)?.[1] !== resource) continue;
      if ((/subresource="(\w*)"/.exec(line)?.[1] ?? '') !== '') continue;
      const key = `${/verb="(\w+)"/.exec(line)?.[1] ?? ''} ${/code="(\w+)"/.exec(line)?.[1] ?? ''}`;
      counts[key] = (counts[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
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
