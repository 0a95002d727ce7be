/**
 * The LoadBalancer address scenarios, ours (`--controllers=loadbalancer`, its Service webhook
 * registered) side by side with MetalLB's controller (METALLB_VERSION, hack/build-metallb.sh) and
 * a bare-client floor, each on its own fresh dual-stack local control plane (audit log of writes
 * on), with the same pools and the same seeded Services; both controllers' clients at
 * controller-runtime's defaults, QPS 20 / burst 30 (MetalLB has no flag for them; ours gets
 * `--kube-api-qps=20 --kube-api-burst=30`).
 *
 * Pools (ours: LoadBalancerIPPool; MetalLB: IPAddressPool in metallb-system; same addresses):
 * - `main`: 10.200.0.0/22 and fd00:200::/120, autoAssign.
 * - `reserved`: 10.201.0.0/24, autoAssign false: the addresses Services ask for by name, so that
 *   whether a requested address is still free does not hang on the order dynamic allocation ran.
 * - `tiny`: 10.202.0.10-10.202.0.17 (8 addresses), autoAssign false: only Services pinned to it
 *   by name use it, and more are pinned than it holds.
 * None overlaps the API server's Service range (10.0.0.0/16, fd00:10::/108).
 *
 * - S7: 1,000 LoadBalancer Services (no selector) created by 20 concurrent clients: every 10th
 *   RequireDualStack (an address of each family from main), every 10th with a sharing key (4
 *   Services per key on distinct ports, so they may share one address), every 10th asking for an
 *   address in reserved, every 50th pinned to tiny (20 for its 8 addresses), the rest plain
 *   IPv4 from main. Measured: from the last create answered until every Service that can have an
 *   address has one (all but the 12 tiny has no room for), status writes and all writes of the
 *   controller (audit log, by its user; the API server's apiserver_request_total beside), peak
 *   RSS and CPU, and what each leaves pending and why (its Events, ours' condition).
 * - S8: on S7's state, the controller is stopped (SIGTERM) and started again while 100 more
 *   Services (every 10th dual-stack) are created: addresses of S7's Services moved, duplicate
 *   addresses, the controller's writes to S7's Services (whose status was already right), and the
 *   time until the 100 new ones have addresses. Ours' webhook (failurePolicy Fail) refuses
 *   creates while no process serves it: those creates are sent again every 100 ms until
 *   admitted, and counted.
 * - floor: no controller; a bare client (our KubeClient, the same QPS 20 / burst 30 token bucket,
 *   5 loops, no informer) patches each Service's status with the addresses a simple sequential
 *   allocator picks, in ours' shape (ingress with ipMode and ports, the condition), as soon as its
 *   create is answered: only the writes that must happen, at that rate.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  loadAllYaml,
  type V1CustomResourceDefinition,
  type V1Service,
} from '@kubernetes/client-node';
import ipaddr from 'ipaddr.js';
import {
  ADDRESS_ASSIGNED_CONDITION,
  POOL_ANNOTATION,
  REQUESTED_IPS_ANNOTATION,
  SHARING_KEY_ANNOTATION,
} from '../controllers/loadbalancer/types.ts';
import { realClock } from '../shared/clock.ts';
import { SharedInformer } from '../shared/informer/informer.ts';
import { serviceResource } from '../shared/informer/resources.ts';
import { KubeClient } from '../shared/kube/client.ts';
import { describeError, statusCode } from '../shared/kube/errors.ts';
import { startControlPlane, type AuditEvent, type ControlPlane } from '../shared/localcontrolplane/index.ts';
import { nopLogger } from '../shared/log.ts';
import { ApiMeter, diff, type Counts } from './apimeter.ts';
import { EventGate } from './eventgate.ts';
import { registerOurWebhook, until as untilWithin, waitOurWebhook } from './ourwebhook.ts';
import {
  ProcSampler,
  startManager,
  withCleanup,
  type Cleanup,
  type RunningManager,
  type Settings,
} from './processes.ts';
import { NAMESPACE, WorkloadWriter } from './workload.ts';

export type LbSide = 'ours' | 'metallb' | 'floor';
export const LB_SIDES: readonly LbSide[] = ['ours', 'metallb', 'floor'];

/** controller-runtime's client defaults, which MetalLB runs at; ours and the floor are set to them. */
/** How long the bench waits on a probe or a setup step here. */
const LB_WAIT_MS = 120_000;
const until = <T>(
  manager: RunningManager | undefined,
  what: string,
  probe: () => Promise<T | undefined | false>,
): Promise<T> => untilWithin(manager, what, probe, LB_WAIT_MS);

export const LB_QPS = 20;
export const LB_BURST = 30;
export const S7_SERVICES = 1000;
export const S7_CLIENTS = 20;
export const S8_SERVICES = 100;
/** The API server's Service range (dual-stack), apart from every pool. */
export const LB_SERVICE_RANGE = '10.0.0.0/16,fd00:10::/108';
/** Floor loops sharing its token bucket (as floor.ts). */
const FLOOR_WORKERS = 5;
/** Every controller's writes come from this user (its own client certificate), for the audit log. */
const CONTROLLER_USER = 'bench-lb-controller';
const METALLB_NAMESPACE = 'metallb-system';
/** Converge waits at most this long (then the scenario records what is still missing). */
const CONVERGE_TIMEOUT_MS = 600_000;
/**
 * After converging, the scenario ends once the controller has written nothing for this long
 * (more than ours' 10 s delay for pool status), or after SETTLE_MAX_MS; its late writes count.
 */
const SETTLE_QUIET_MS = 15_000;
const SETTLE_MAX_MS = 300_000;

export interface LbPool {
  name: string;
  addresses: string[];
  autoAssign: boolean;
}

export const LB_POOLS: readonly LbPool[] = [
  { name: 'main', addresses: ['10.200.0.0/22', 'fd00:200::/120'], autoAssign: true },
  { name: 'reserved', addresses: ['10.201.0.0/24'], autoAssign: false },
  { name: 'tiny', addresses: ['10.202.0.10-10.202.0.17'], autoAssign: false },
];
const MAIN_V4 = '10.200.0.0/22';
const MAIN_V6 = 'fd00:200::/120';
const TINY_FIRST = 10;
export const TINY_SIZE = 8;

export const S7_TITLE =
  'LoadBalancer addresses: 1,000 Services from 20 concurrent clients (1 in 10 dual-stack, 1 in 10 sharing, 1 in 10 a requested address, 20 pinned to an 8-address pool)';
export const S8_TITLE =
  'controller restart on S7: stopped and started again while 100 more Services are created';
export const LB_SCENARIOS: readonly { id: 'S7' | 'S8'; title: string }[] = [
  { id: 'S7', title: S7_TITLE },
  { id: 'S8', title: S8_TITLE },
];

// ---------------------------------------------------------------------------------------------
// The workload.

export type LbKind = 'plain' | 'dual' | 'shared' | 'requested' | 'tiny';

export interface LbServiceSpec {
  name: string;
  kind: LbKind;
  port: number;
  sharingKey?: string;
  /** `requested`: the address it asks for. */
  requested?: string;
}

/** The annotations a controller reads (ours' and MetalLB's names for the same three things). */
export interface Flavor {
  requestedIps: string;
  pool: string;
  sharingKey: string;
}

export const OURS_FLAVOR: Flavor = {
  requestedIps: REQUESTED_IPS_ANNOTATION,
  pool: POOL_ANNOTATION,
  sharingKey: SHARING_KEY_ANNOTATION,
};
export const METALLB_FLAVOR: Flavor = {
  requestedIps: 'metallb.io/loadBalancerIPs',
  pool: 'metallb.io/address-pool',
  sharingKey: 'metallb.io/allow-shared-ip',
};
const SHARING_KEYS = [OURS_FLAVOR.sharingKey, METALLB_FLAVOR.sharingKey];

/** S7's Services, deterministic: the kind of Service i follows from i (see the module comment). */
export function s7Specs(count: number): LbServiceSpec[] {
  return Array.from({ length: count }, (_, i): LbServiceSpec => {
    const name = `lb-${i}`;
    const j = Math.floor(i / 10);
    if (i % 10 === 0) return { name, kind: 'dual', port: 80 };
    if (i % 10 === 1)
      return { name, kind: 'shared', port: 8000 + (j % 4), sharingKey: `share-${Math.floor(j / 4)}` };
    if (i % 10 === 2 && j + 1 <= 254)
      return { name, kind: 'requested', port: 80, requested: `10.201.0.${j + 1}` };
    if (i % 50 === 3) return { name, kind: 'tiny', port: 80 };
    return { name, kind: 'plain', port: 80 };
  });
}

/** S8's new Services: every 10th dual-stack, the rest plain. */
export function s8Specs(count: number): LbServiceSpec[] {
  return Array.from({ length: count }, (_, i): LbServiceSpec => ({
    name: `lb-new-${i}`,
    kind: i % 10 === 0 ? 'dual' : 'plain',
    port: 80,
  }));
}

export function lbServiceBody(spec: LbServiceSpec, flavor: Flavor): V1Service {
  const annotations: Record<string, string> = {};
  if (spec.kind === 'shared' && spec.sharingKey) annotations[flavor.sharingKey] = spec.sharingKey;
  if (spec.kind === 'requested' && spec.requested) annotations[flavor.requestedIps] = spec.requested;
  if (spec.kind === 'tiny') annotations[flavor.pool] = 'tiny';
  return {
    metadata: { name: spec.name, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) },
    spec: {
      type: 'LoadBalancer',
      ...(spec.kind === 'dual'
        ? { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] }
        : { ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4'] }),
      ports: [{ name: 'p', port: spec.port, targetPort: 8080, protocol: 'TCP' }],
    },
  };
}

/** Services of `specs` that can have an address: all but those tiny has no room for. */
export function expectedAssigned(specs: readonly LbServiceSpec[]): number {
  const tiny = specs.filter((s) => s.kind === 'tiny').length;
  return specs.length - tiny + Math.min(tiny, TINY_SIZE);
}

// ---------------------------------------------------------------------------------------------
// Checks on what the Services show (pure).

function canonical(ip: string): string | undefined {
  try {
    return ipaddr.process(ip).toString();
  } catch {
    return undefined;
  }
}

/** The addresses a Service's status shows, canonical. */
export function addressesOf(svc: V1Service | undefined): string[] {
  return (svc?.status?.loadBalancer?.ingress ?? [])
    .map((i) => (i.ip === undefined ? undefined : canonical(i.ip)))
    .filter((ip): ip is string => ip !== undefined);
}

function inCidr(ip: string, cidr: string): boolean {
  try {
    const a = ipaddr.process(ip);
    const [net, bits] = ipaddr.parseCIDR(cidr);
    return a.kind() === net.kind() && a.match([net, bits]);
  } catch {
    return false;
  }
}

function inTiny(ip: string): boolean {
  const m = /^10\.202\.0\.(\d+)$/.exec(ip);
  return m !== null && Number(m[1]) >= TINY_FIRST && Number(m[1]) < TINY_FIRST + TINY_SIZE;
}

/** Why the addresses are not what the Service should have; undefined when they are right. */
export function wrongAddresses(spec: LbServiceSpec, ips: readonly string[]): string | undefined {
  const want = spec.kind === 'dual' ? 2 : 1;
  if (ips.length !== want) return `${spec.name} (${spec.kind}) has ${ips.length} addresses, want ${want}`;
  switch (spec.kind) {
    case 'dual':
      return ips.some((ip) => inCidr(ip, MAIN_V4)) && ips.some((ip) => inCidr(ip, MAIN_V6))
        ? undefined
        : `${spec.name} (dual) has ${ips.join(', ')}, want one of ${MAIN_V4} and one of ${MAIN_V6}`;
    case 'requested':
      return ips[0] === spec.requested
        ? undefined
        : `${spec.name} has ${ips[0]}, asked for ${spec.requested}`;
    case 'tiny':
      return inTiny(ips[0]) ? undefined : `${spec.name} (pinned to tiny) has ${ips[0]}`;
    default:
      return inCidr(ips[0], MAIN_V4)
        ? undefined
        : `${spec.name} (${spec.kind}) has ${ips[0]}, not in ${MAIN_V4}`;
  }
}

/** Every Service that can have an address has as many as it needs (not checking which). */
export function allAssigned(
  specs: readonly LbServiceSpec[],
  get: (name: string) => V1Service | undefined,
): boolean {
  let tinyWith = 0;
  let tiny = 0;
  for (const spec of specs) {
    const n = addressesOf(get(spec.name)).length;
    if (spec.kind === 'tiny') {
      tiny++;
      if (n > 0) tinyWith++;
    } else if (n < (spec.kind === 'dual' ? 2 : 1)) {
      return false;
    }
  }
  return tinyWith >= Math.min(tiny, TINY_SIZE);
}

function sharingKeyOf(svc: V1Service): string | undefined {
  const a = svc.metadata?.annotations ?? {};
  for (const k of SHARING_KEYS) if (a[k]) return a[k];
  return undefined;
}

export interface DuplicateCheck {
  /** Addresses held by more than one Service (allowed ones included). */
  sharedAddresses: number;
  /** Addresses held by two or more Services that are not sharing-key partners on distinct ports. */
  duplicates: number;
  samples: string[];
}

/** Addresses two Services hold that may not share them: different or no keys, or a port in common. */
export function duplicateAddresses(services: readonly V1Service[]): DuplicateCheck {
  const holders = new Map<string, V1Service[]>();
  for (const svc of services) {
    for (const ip of new Set(addressesOf(svc))) holders.set(ip, [...(holders.get(ip) ?? []), svc]);
  }
  let sharedAddresses = 0;
  let duplicates = 0;
  const samples: string[] = [];
  for (const [ip, list] of holders) {
    if (list.length < 2) continue;
    sharedAddresses++;
    const key = sharingKeyOf(list[0]);
    const ports = new Set<string>();
    let ok = key !== undefined;
    for (const svc of list) {
      if (sharingKeyOf(svc) !== key) ok = false;
      for (const p of svc.spec?.ports ?? []) {
        const id = `${p.protocol ?? 'TCP'}/${p.port}`;
        if (ports.has(id)) ok = false;
        ports.add(id);
      }
    }
    if (!ok) {
      duplicates++;
      if (samples.length < 5) samples.push(`${ip}: ${list.map((s) => s.metadata?.name).join(', ')}`);
    }
  }
  return { sharedAddresses, duplicates, samples };
}

// ---------------------------------------------------------------------------------------------
// Watching the Services, reading the audit log.

/** The bench namespace's Services from a list + watch; tells when a predicate first holds. */
class ServiceWatch {
  private readonly stopping = new AbortController();
  private readonly informer: SharedInformer<V1Service>;
  private readonly running: Promise<void>;
  private readonly gate = new EventGate();

  private constructor(kc: KubeConfig) {
    const client = new KubeClient(kc, { qps: 0, burst: 0, userAgent: 'bench-lb-watch' });
    this.informer = new SharedInformer({
      resource: serviceResource,
      client,
      clock: realClock,
      log: nopLogger,
    });
    const onEvent = (o: V1Service): void => {
      if (o.metadata?.namespace === NAMESPACE) this.gate.noteEvent();
    };
    this.informer.addEventHandler({ add: onEvent, update: (_, n) => onEvent(n), delete: onEvent });
    this.running = this.informer.run(this.stopping.signal);
  }

  static async start(kc: KubeConfig): Promise<ServiceWatch> {
    const w = new ServiceWatch(kc);
    await w.informer.waitForSync(w.stopping.signal);
    return w;
  }

  get(name: string): V1Service | undefined {
    return this.informer.lister.get(`${NAMESPACE}/${name}`);
  }

  list(): V1Service[] {
    return this.informer.lister.list().filter((s) => s.metadata?.namespace === NAMESPACE);
  }

  /** The arrival time of the watch event after which `holds()` was true; NaN on timeout. */
  until(holds: () => boolean, timeoutMs: number): Promise<number> {
    return this.gate.until(holds, timeoutMs);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running.catch(() => undefined);
  }
}

/** kube-apiserver's audit log of writes, read incrementally. */
class AuditTail {
  readonly events: AuditEvent[] = [];
  private offset = 0;
  private readonly file: string;

  constructor(file: string) {
    this.file = file;
  }

  /** Appends the complete lines written since the last read; returns how many there are now. */
  read(): number {
    let text: string;
    try {
      const buf = readFileSync(this.file);
      text = buf.subarray(this.offset).toString('utf8');
    } catch {
      return this.events.length;
    }
    const end = text.lastIndexOf('\n');
    if (end < 0) return this.events.length;
    this.offset += Buffer.byteLength(text.slice(0, end + 1));
    for (const line of text.slice(0, end).split('\n')) {
      if (line === '') continue;
      const e = JSON.parse(line) as AuditEvent;
      if (e.stage === 'ResponseComplete') this.events.push(e);
    }
    return this.events.length;
  }

  /** The controller's writes since event number `from`. */
  byController(from: number): AuditEvent[] {
    this.read();
    return this.events.slice(from).filter((e) => e.user.username === CONTROLLER_USER);
  }

  /** Waits until the controller has written nothing for `quietMs` (at most `maxMs`). */
  async settle(quietMs: number, maxMs: number): Promise<number> {
    const started = Date.now();
    let count = this.byController(0).length;
    let lastChange = Date.now();
    while (Date.now() - lastChange < quietMs && Date.now() - started < maxMs) {
      await new Promise((r) => setTimeout(r, 500));
      const now = this.byController(0).length;
      if (now !== count) {
        count = now;
        lastChange = Date.now();
      }
    }
    return (Date.now() - started) / 1000;
  }
}

const isStatusWrite = (e: AuditEvent): boolean =>
  (e.verb === 'update' || e.verb === 'patch') &&
  e.objectRef?.resource === 'services' &&
  e.objectRef.subresource === 'status';

function auditKey(e: AuditEvent): string {
  const r = e.objectRef ?? {};
  return `${e.verb} ${r.resource ?? '?'}${r.subresource ? `/${r.subresource}` : ''}`;
}

export interface ControllerWrites {
  /** "verb resource[/subresource]" -> writes by the controller's user (audit log), any answer. */
  byResource: Counts;
  total: number;
  /** Writes answered 4xx/5xx (409 conflicts, mostly). */
  failed: number;
  /** Updates and patches of services/status. */
  statusWrites: number;
}

function controllerWrites(events: readonly AuditEvent[]): ControllerWrites {
  const byResource: Counts = {};
  let failed = 0;
  for (const e of events) {
    byResource[auditKey(e)] = (byResource[auditKey(e)] ?? 0) + 1;
    if ((e.responseStatus?.code ?? 200) >= 400) failed++;
  }
  return { byResource, total: events.length, failed, statusWrites: events.filter(isStatusWrite).length };
}

/** Status writes per Service name. */
function statusWritesByService(events: readonly AuditEvent[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of events) {
    if (!isStatusWrite(e) || e.objectRef?.namespace !== NAMESPACE) continue;
    const name = e.objectRef.name ?? '';
    m.set(name, (m.get(name) ?? 0) + 1);
  }
  return m;
}

/** Write requests to services/status in the API server's meter (every client). */
function meterStatusWrites(c: Counts): number {
  return Object.entries(c)
    .filter(([k]) => /^(PUT|PATCH|APPLY) services\/status$/.test(k))
    .reduce((n, [, v]) => n + v, 0);
}

// ---------------------------------------------------------------------------------------------
// Events and reasons.

export interface ReasonCount {
  text: string;
  count: number;
}

/** Events about the bench namespace's Services: reason -> occurrences; and per Service its last Warning. */
async function serviceEvents(
  core: CoreV1Api,
): Promise<{ byReason: Counts; lastWarning: Map<string, string> }> {
  const list = await core.listNamespacedEvent({ namespace: NAMESPACE });
  const byReason: Counts = {};
  const last = new Map<string, { at: number; text: string }>();
  for (const e of list.items) {
    if (e.involvedObject.kind !== 'Service') continue;
    // The API server's own repair loops (ClusterIPNotAllocated and the like) are no controller's.
    if (/^(ipallocator|portallocator)/.test(e.source?.component ?? e.reportingComponent ?? '')) continue;
    const n = e.series?.count ?? e.count ?? 1;
    const reason = e.reason ?? '';
    byReason[reason] = (byReason[reason] ?? 0) + n;
    if (e.type !== 'Warning') continue;
    const name = e.involvedObject.name ?? '';
    const at = new Date(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? 0).getTime();
    const prior = last.get(name);
    if (!prior || at >= prior.at) last.set(name, { at, text: `${reason}: ${e.message ?? ''}` });
  }
  return { byReason, lastWarning: new Map([...last].map(([k, v]) => [k, v.text])) };
}

/** The reason a pending Service gives, its own name replaced so that equal reasons group. */
function pendingReason(svc: V1Service | undefined, name: string, lastWarning: Map<string, string>): string {
  const parts: string[] = [];
  const cond = svc?.status?.conditions?.find((c) => c.type === ADDRESS_ASSIGNED_CONDITION);
  if (cond) parts.push(`condition ${cond.status} ${cond.reason}: ${cond.message}`);
  const w = lastWarning.get(name);
  if (w) parts.push(`event ${w}`);
  const text = parts.length > 0 ? parts.join(' | ') : 'no condition, no Warning event';
  return text.replaceAll(`${NAMESPACE}/${name}`, '<service>').replaceAll(name, '<service>');
}

function groupReasons(texts: readonly string[]): ReasonCount[] {
  const m = new Map<string, number>();
  for (const t of texts) m.set(t, (m.get(t) ?? 0) + 1);
  return [...m]
    .map(([text, count]) => ({ text, count }))
    .sort((a, b) => b.count - a.count)
    .slice(0, 5);
}

// ---------------------------------------------------------------------------------------------
// Results.

export interface LbS7Result {
  scenario: 'S7';
  side: LbSide;
  services: number;
  dualStack: number;
  sharing: number;
  requested: number;
  pinnedToTiny: number;
  /** Services that can have an address. */
  expectedAssigned: number;
  clients: number;
  /** From the first create sent until the last answered. */
  createSeconds: number;
  createFailures: number;
  createFailureSamples: string[];
  converged: boolean;
  /** From the last create answered until the watch showed every Service that can have one with an address. */
  convergeSeconds: number;
  /** Services with an address, at the end. */
  assigned: number;
  wrongAddresses: number;
  wrongSamples: string[];
  sharedAddresses: number;
  duplicates: number;
  duplicateSamples: string[];
  pending: number;
  pendingReasons: ReasonCount[];
  /** API server meter, every client: "VERB resource[/sub]" -> writes, creates included. */
  meterWrites: Counts;
  /** PUT/PATCH services/status in the API server's meter. */
  meterStatusWrites: number;
  /** The controller's own writes (audit log, by its user). */
  controller: ControllerWrites;
  /** Assigned Services of S7 with exactly one status write, with more, with none (by the controller). */
  assignedWithOneStatusWrite: number;
  assignedWithMoreStatusWrites: number;
  assignedWithoutStatusWrite: number;
  maxStatusWritesOneService: number;
  /** Status writes to Services left pending. */
  statusWritesToPending: number;
  /** Events about the Services: reason -> occurrences. */
  events: Counts;
  /** After converging, until the controller was quiet. */
  settleSeconds: number;
  peakRssBytes: number;
  cpuSeconds: number;
}

export interface LbS8Result {
  scenario: 'S8';
  side: LbSide;
  newServices: number;
  /** SIGTERM until the old process exited. */
  stopSeconds: number;
  /** Create attempts answered with an error and sent again (ours: while no webhook serves). */
  createRefusals: number;
  createRefusalSamples: string[];
  createFailures: number;
  /** From the SIGTERM until the last create answered. */
  createSeconds: number;
  converged: boolean;
  /** From the last create answered until the 100 new Services had addresses. */
  convergeSeconds: number;
  /** From the SIGTERM until the 100 new Services had addresses. */
  convergeFromRestartSeconds: number;
  /** S7 Services with an address at S7's end whose addresses differ now (lost or changed). */
  moved: number;
  movedSamples: string[];
  /** S7 Services pending at S7's end that have an address now. */
  newlyAssignedOld: number;
  duplicates: number;
  duplicateSamples: string[];
  wrongAddresses: number;
  wrongSamples: string[];
  /** The controller's writes to S7's Services, which were already right ("verb resource/sub" -> n). */
  writesToS7: Counts;
  writesToS7Total: number;
  /** Of those, to S7 Services that had an address. */
  writesToS7Assigned: number;
  /** S7 Services whose resourceVersion changed during S8 (a write that changed something). */
  s7ResourceVersionsChanged: number;
  controller: ControllerWrites;
  meterWrites: Counts;
  meterStatusWrites: number;
  events: Counts;
  settleSeconds: number;
  /** The new process, from its start until the scenario ended. */
  peakRssBytes: number;
  cpuSeconds: number;
}

export interface LbSideResult {
  side: LbSide;
  s7: LbS7Result;
  s8?: LbS8Result;
}

export interface LoadBalancerRun {
  qps: number;
  burst: number;
  serviceClusterIpRange: string;
  pools: readonly LbPool[];
  metallbVersion: string;
  sides: LbSideResult[];
}

// ---------------------------------------------------------------------------------------------
// The sides.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export function metallbVersion(): string {
  const text = readFileSync(join(ROOT, 'hack', 'versions.env'), 'utf8');
  const m = /^METALLB_VERSION=(\S+)$/m.exec(text);
  if (!m) throw new Error('hack/versions.env sets no METALLB_VERSION');
  return m[1];
}

/** Where hack/build-metallb.sh put the controller and the CRDs (SCM_METALLB_DIR overrides). */
export function metallbDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SCM_METALLB_DIR) return env.SCM_METALLB_DIR;
  const cacheHome = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const root = env.SCM_METALLB_CACHE || join(cacheHome, 'service-controller-manager', 'metallb');
  return join(root, metallbVersion());
}

/** A controller to measure, or none (the floor). */
interface Side {
  flavor: Flavor;
  /** The controller process, undefined for the floor. */
  manager: RunningManager | undefined;
  /** Called with each Service once its create is answered (the floor writes its status). */
  onCreated(svc: V1Service, spec: LbServiceSpec): void;
  /** Stops the controller (the floor: drains its writer). */
  stop(): Promise<void>;
  /** Starts it again (the floor: a new client, a new token bucket). */
  start(): Promise<void>;
}

export interface LbSessionOptions {
  nodeArgs: string[];
  scale: number;
  logDir: string | undefined;
  /** Run S8 after S7. */
  s8: boolean;
}

const lbSettings = (): Settings => ({ qps: LB_QPS, burst: LB_BURST, workers: 5, batchPeriod: '0s' });

async function createPools(kc: KubeConfig, side: 'ours' | 'metallb'): Promise<void> {
  const api = kc.makeApiClient(CustomObjectsApi);
  for (const p of LB_POOLS) {
    if (side === 'ours') {
      await api.createClusterCustomObject({
        group: 'scm.dev',
        version: 'v1alpha1',
        plural: 'loadbalancerippools',
        body: {
          apiVersion: 'scm.dev/v1alpha1',
          kind: 'LoadBalancerIPPool',
          metadata: { name: p.name },
          spec: { addresses: p.addresses, autoAssign: p.autoAssign },
        },
      });
    } else {
      await api.createNamespacedCustomObject({
        group: 'metallb.io',
        version: 'v1beta1',
        namespace: METALLB_NAMESPACE,
        plural: 'ipaddresspools',
        body: {
          apiVersion: 'metallb.io/v1beta1',
          kind: 'IPAddressPool',
          metadata: { name: p.name, namespace: METALLB_NAMESPACE },
          spec: { addresses: p.addresses, autoAssign: p.autoAssign },
        },
      });
    }
  }
}

/** MetalLB's CRDs from the cache (config/crd/bases of its module), established. */
async function installMetalLBCRDs(kc: KubeConfig, dir: string): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const names: string[] = [];
  for (const file of readdirSync(join(dir, 'crds')).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of loadAllYaml(
      readFileSync(join(dir, 'crds', file), 'utf8'),
    ) as V1CustomResourceDefinition[]) {
      if (doc?.kind !== 'CustomResourceDefinition') continue;
      await api.createCustomResourceDefinition({ body: doc });
      names.push(doc.metadata?.name ?? '');
    }
  }
  for (const name of names) {
    await until(undefined, `CRD ${name} established`, async () => {
      const got = await api.readCustomResourceDefinition({ name });
      return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    });
  }
}

/** What MetalLB needs before it starts: its namespace, the Deployment its memberlist Secret names as owner. */
async function metallbPrerequisites(kc: KubeConfig): Promise<void> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: METALLB_NAMESPACE } } });
  const labels = { app: 'metallb', component: 'controller' };
  await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace: METALLB_NAMESPACE,
    body: {
      metadata: { name: 'controller', labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [{ name: 'controller', image: `quay.io/metallb/controller:${metallbVersion()}` }],
          },
        },
      },
    },
  });
}

/** Creates a probe Service (again while refused) and waits until it has an address. */
async function probeReady(cp: ControlPlane, watch: ServiceWatch, side: Side, name: string): Promise<void> {
  const core = cp.kubeConfig.makeApiClient(CoreV1Api);
  await until(side.manager, `the probe Service ${name} to be created`, async () => {
    try {
      await core.createNamespacedService({
        namespace: NAMESPACE,
        body: lbServiceBody({ name, kind: 'plain', port: 80 }, side.flavor),
      });
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
    }
    return true;
  });
  await until(side.manager, `an address for the probe Service ${name}`, () =>
    Promise.resolve(addressesOf(watch.get(name)).length > 0 ? true : undefined),
  );
}

async function startOursSide(
  cp: ControlPlane,
  kubeconfigPath: string,
  opts: LbSessionOptions,
  cleanup: Cleanup,
): Promise<Side> {
  const webhookArgs = await registerOurWebhook(cp);
  await createPools(cp.kubeConfig, 'ours');
  let run = 0;
  const launch = async (): Promise<void> => {
    run++;
    const m = await startManager('ours', cp, lbSettings(), {
      nodeArgs: opts.nodeArgs,
      logPath: opts.logDir === undefined ? undefined : join(opts.logDir, `ours-S7S8-${run}.log`),
      kubeconfigPath,
      controllers: 'loadbalancer',
      extraArgs: webhookArgs,
    });
    side.manager = m;
    cleanup.defer(() => (m.exited() === undefined ? m.stop() : undefined));
  };
  const side: Side = {
    flavor: OURS_FLAVOR,
    manager: undefined,
    onCreated: () => undefined,
    stop: async () => side.manager?.stop(),
    start: launch,
  };
  await launch();
  await waitOurWebhook(side.manager, cp, LB_WAIT_MS);
  return side;
}

async function startMetalLBSide(
  cp: ControlPlane,
  kubeconfigPath: string,
  opts: LbSessionOptions,
  cleanup: Cleanup,
): Promise<Side> {
  const dir = metallbDir();
  await installMetalLBCRDs(cp.kubeConfig, dir);
  await metallbPrerequisites(cp.kubeConfig);
  await createPools(cp.kubeConfig, 'metallb');
  let run = 0;
  const launch = async (): Promise<void> => {
    run++;
    const m = await startManager('metallb', cp, lbSettings(), {
      logPath: opts.logDir === undefined ? undefined : join(opts.logDir, `metallb-S7S8-${run}.log`),
      kubeconfigPath,
      metallb: { binary: join(dir, 'controller'), namespace: METALLB_NAMESPACE },
    });
    side.manager = m;
    cleanup.defer(() => (m.exited() === undefined ? m.stop() : undefined));
  };
  const side: Side = {
    flavor: METALLB_FLAVOR,
    manager: undefined,
    onCreated: () => undefined,
    stop: async () => side.manager?.stop(),
    start: launch,
  };
  await launch();
  return side;
}

/** The floor's allocator: the lowest free address of the right pool, one per sharing key. */
class FloorAllocator {
  private v4 = 1;
  private v6 = 1;
  private tiny = 0;
  private readonly byKey = new Map<string, string>();

  pick(spec: LbServiceSpec): string[] {
    const v4 = (): string => {
      const n = this.v4++;
      return `10.200.${n >> 8}.${n & 255}`;
    };
    switch (spec.kind) {
      case 'dual':
        return [v4(), `fd00:200::${(this.v6++).toString(16)}`];
      case 'requested':
        return [spec.requested ?? ''];
      case 'tiny':
        return this.tiny < TINY_SIZE ? [`10.202.0.${TINY_FIRST + this.tiny++}`] : [];
      case 'shared': {
        const key = spec.sharingKey ?? '';
        const ip = this.byKey.get(key) ?? v4();
        this.byKey.set(key, ip);
        return [ip];
      }
      default:
        return [v4()];
    }
  }
}

/**
 * The floor's writer: loops sharing one token bucket (QPS 20 / burst 30) patch each Service's
 * status as a controller would (JSON patch with the resourceVersion read, ours' shape).
 */
class FloorWriter {
  private readonly queue: { svc: V1Service; ips: string[] }[] = [];
  private readonly loops: Promise<void>[] = [];
  private waiting: (() => void)[] = [];
  private closed = false;
  private readonly client: KubeClient;

  constructor(kc: KubeConfig) {
    this.client = new KubeClient(kc, { qps: LB_QPS, burst: LB_BURST, userAgent: 'bench-lb-floor' });
    for (let i = 0; i < FLOOR_WORKERS; i++) this.loops.push(this.loop());
  }

  enqueue(svc: V1Service, ips: string[]): void {
    if (ips.length === 0) return;
    this.queue.push({ svc, ips });
    this.waiting.shift()?.();
  }

  private async loop(): Promise<void> {
    for (;;) {
      const item = this.queue.shift();
      if (item === undefined) {
        if (this.closed) return;
        await new Promise<void>((r) => this.waiting.push(r));
        continue;
      }
      await this.write(item.svc, item.ips);
    }
  }

  private async write(svc: V1Service, ips: string[]): Promise<void> {
    const ports = (svc.spec?.ports ?? []).map((p) => ({ port: p.port, protocol: p.protocol ?? 'TCP' }));
    const status = {
      loadBalancer: { ingress: ips.map((ip) => ({ ip, ipMode: 'VIP', ports })) },
      conditions: [
        {
          type: ADDRESS_ASSIGNED_CONDITION,
          status: 'True',
          reason: 'Assigned',
          message: `assigned ${ips.join(', ')}`,
          observedGeneration: svc.metadata?.generation,
          lastTransitionTime: new Date(),
        },
      ],
    };
    let current = svc;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.client.core.patchNamespacedServiceStatus({
          name: current.metadata?.name ?? '',
          namespace: NAMESPACE,
          body: [
            { op: 'replace', path: '/metadata/resourceVersion', value: current.metadata?.resourceVersion },
            { op: 'add', path: '/status', value: status },
          ],
        });
        return;
      } catch (err) {
        if (statusCode(err) !== 409) throw err;
        current = await this.client.core.readNamespacedService({
          name: svc.metadata?.name ?? '',
          namespace: NAMESPACE,
        });
      }
    }
  }

  /** Writes what is queued, then stops the loops. */
  async drain(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w();
    await Promise.all(this.loops);
  }
}

function startFloorSide(kc: KubeConfig): Side {
  const allocator = new FloorAllocator();
  let writer = new FloorWriter(kc);
  return {
    flavor: OURS_FLAVOR,
    manager: undefined,
    onCreated: (svc, spec) => writer.enqueue(svc, allocator.pick(spec)),
    stop: () => writer.drain(),
    start: () => {
      writer = new FloorWriter(kc);
      return Promise.resolve();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Creating the Services.

interface CreateOutcome {
  spec: LbServiceSpec;
  sentAt: number;
  answeredAt: number;
  refusals: number;
  refusalSample?: string;
  error?: string;
}

/**
 * `specs` created by `clients` concurrent loops (each sends its next create once answered).
 * With `retryUntil`, a create answered with an error is sent again every 100 ms until then (an
 * AlreadyExists means an earlier try was admitted and its answer lost).
 */
async function createAll(
  core: CoreV1Api,
  specs: readonly LbServiceSpec[],
  side: Side,
  clients: number,
  retryUntil?: number,
): Promise<CreateOutcome[]> {
  const out: CreateOutcome[] = [];
  let next = 0;
  const one = async (spec: LbServiceSpec): Promise<CreateOutcome> => {
    const sentAt = Date.now();
    let refusals = 0;
    let refusalSample: string | undefined;
    for (;;) {
      try {
        const created = await core.createNamespacedService({
          namespace: NAMESPACE,
          body: lbServiceBody(spec, side.flavor),
        });
        side.onCreated(created, spec);
        return { spec, sentAt, answeredAt: Date.now(), refusals, refusalSample };
      } catch (err) {
        if (statusCode(err) === 409 && refusals > 0) {
          const got = await core.readNamespacedService({ name: spec.name, namespace: NAMESPACE });
          side.onCreated(got, spec);
          return { spec, sentAt, answeredAt: Date.now(), refusals, refusalSample };
        }
        if (retryUntil === undefined || Date.now() > retryUntil) {
          return { spec, sentAt, answeredAt: Date.now(), refusals, refusalSample, error: describeError(err) };
        }
        refusals++;
        refusalSample ??= describeError(err);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const loop = async (): Promise<void> => {
    while (next < specs.length) out.push(await one(specs[next++]));
  };
  await Promise.all(Array.from({ length: Math.min(clients, specs.length) }, loop));
  return out;
}

/** When the last successful create was answered (NaN when none succeeded). */
function lastAnswered(outcomes: readonly CreateOutcome[]): number {
  const ok = outcomes.filter((o) => o.error === undefined).map((o) => o.answeredAt);
  return ok.length === 0 ? Number.NaN : Math.max(...ok);
}

// ---------------------------------------------------------------------------------------------
// One side: S7, then S8, on a fresh control plane.

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}

function s(seconds: number): string {
  return Number.isFinite(seconds) ? seconds.toFixed(2) : '—';
}

export async function runLoadBalancerSide(side: LbSide, opts: LbSessionOptions): Promise<LbSideResult> {
  process.stderr.write(`[bench] ${side} S7: ${S7_TITLE}\n`);
  return withCleanup(async (cleanup) => {
    const cp = await startControlPlane({ serviceClusterIpRange: LB_SERVICE_RANGE, auditWrites: true });
    cleanup.defer(() => cp.stop());
    const meter = new ApiMeter(cp);
    cleanup.defer(() => meter.close());
    if (cp.auditLogPath === undefined) throw new Error('no audit log');
    const audit = new AuditTail(cp.auditLogPath);
    await new WorkloadWriter(cp.kubeConfig).namespace();
    const watch = await ServiceWatch.start(cp.kubeConfig);
    cleanup.defer(() => watch.stop());
    const userKubeconfig = await cp.userKubeconfig(CONTROLLER_USER);
    const kc = new KubeConfig();
    kc.loadFromFile(userKubeconfig);
    const sideImpl =
      side === 'ours'
        ? await startOursSide(cp, userKubeconfig, opts, cleanup)
        : side === 'metallb'
          ? await startMetalLBSide(cp, userKubeconfig, opts, cleanup)
          : startFloorSide(kc);
    cleanup.defer(() => (side === 'floor' ? sideImpl.stop() : undefined));
    if (side !== 'floor') await probeReady(cp, watch, sideImpl, 'lb-probe');
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);

    // S7.
    const specs = s7Specs(Math.max(1, Math.round(S7_SERVICES * opts.scale)));
    const auditFrom = audit.read();
    const meterBefore = await meter.allWrites();
    let sampler = sideImpl.manager ? new ProcSampler(sideImpl.manager.pid) : undefined;
    cleanup.defer(() => sampler?.stop());
    const outcomes = await createAll(core, specs, sideImpl, S7_CLIENTS);
    const last = lastAnswered(outcomes);
    const first = Math.min(...outcomes.map((o) => o.sentAt));
    const at = await watch.until(
      () => sideImpl.manager?.exited() !== undefined || allAssigned(specs, (n) => watch.get(n)),
      CONVERGE_TIMEOUT_MS,
    );
    const exited = sideImpl.manager?.exited();
    if (exited !== undefined) throw new Error(exited);
    const converged = Number.isFinite(at) && allAssigned(specs, (n) => watch.get(n));
    const settleStarted = Date.now();
    if (side === 'floor') await sideImpl.stop();
    else await audit.settle(SETTLE_QUIET_MS, SETTLE_MAX_MS);
    const settleSeconds = (Date.now() - settleStarted) / 1000;
    const stats = sampler?.stop() ?? { peakRssBytes: 0, cpuSeconds: 0 };
    const meterWrites = diff(await meter.allWrites(), meterBefore);
    const s7Events = audit.byController(auditFrom);
    const writes = controllerWrites(s7Events);
    const perService = statusWritesByService(s7Events);
    const { byReason, lastWarning } = await serviceEvents(core);
    const s7Addresses = new Map<string, string[]>();
    const s7Versions = new Map(specs.map((x) => [x.name, watch.get(x.name)?.metadata?.resourceVersion]));
    const wrong: string[] = [];
    const pendingTexts: string[] = [];
    let one = 0;
    let more = 0;
    let none = 0;
    let maxWrites = 0;
    let toPending = 0;
    for (const spec of specs) {
      const svc = watch.get(spec.name);
      const ips = addressesOf(svc);
      s7Addresses.set(spec.name, ips);
      const n = perService.get(spec.name) ?? 0;
      maxWrites = Math.max(maxWrites, n);
      if (ips.length === 0) {
        pendingTexts.push(pendingReason(svc, spec.name, lastWarning));
        toPending += n;
        continue;
      }
      const why = wrongAddresses(spec, ips);
      if (why) wrong.push(why);
      if (n === 1) one++;
      else if (n > 1) more++;
      else none++;
    }
    const dup = duplicateAddresses(watch.list());
    const failures = outcomes.filter((o) => o.error !== undefined);
    const s7: LbS7Result = {
      scenario: 'S7',
      side,
      services: specs.length,
      dualStack: specs.filter((x) => x.kind === 'dual').length,
      sharing: specs.filter((x) => x.kind === 'shared').length,
      requested: specs.filter((x) => x.kind === 'requested').length,
      pinnedToTiny: specs.filter((x) => x.kind === 'tiny').length,
      expectedAssigned: expectedAssigned(specs),
      clients: S7_CLIENTS,
      createSeconds: (last - first) / 1000,
      createFailures: failures.length,
      createFailureSamples: [...new Set(failures.map((o) => o.error ?? ''))].slice(0, 3),
      converged,
      convergeSeconds: converged ? Math.max(0, at - last) / 1000 : Number.NaN,
      assigned: specs.length - pendingTexts.length,
      wrongAddresses: wrong.length,
      wrongSamples: wrong.slice(0, 5),
      sharedAddresses: dup.sharedAddresses,
      duplicates: dup.duplicates,
      duplicateSamples: dup.samples,
      pending: pendingTexts.length,
      pendingReasons: groupReasons(pendingTexts),
      meterWrites,
      meterStatusWrites: meterStatusWrites(meterWrites),
      controller: writes,
      assignedWithOneStatusWrite: one,
      assignedWithMoreStatusWrites: more,
      assignedWithoutStatusWrite: none,
      maxStatusWritesOneService: maxWrites,
      statusWritesToPending: toPending,
      events: byReason,
      settleSeconds,
      peakRssBytes: stats.peakRssBytes,
      cpuSeconds: stats.cpuSeconds,
    };
    process.stderr.write(
      `[bench] ${side} S7: ${specs.length} creates in ${s(s7.createSeconds)} s (${s7.createFailures} failed), ` +
        `converged ${converged ? `${s(s7.convergeSeconds)} s after the last create` : 'NOT (timeout)'}, ` +
        `${s7.assigned}/${s7.expectedAssigned} assigned, ${s7.wrongAddresses} wrong, ${s7.duplicates} duplicates, ` +
        `${s7.sharedAddresses} shared; status writes ${writes.statusWrites} (meter ${s7.meterStatusWrites}), ` +
        `all writes ${writes.total} (${writes.failed} failed); assigned with 1 / >1 / 0 status writes ${one} / ${more} / ${none}; ` +
        `settle ${s(settleSeconds)} s; peak RSS ${mib(stats.peakRssBytes)} MiB, CPU ${stats.cpuSeconds.toFixed(1)} s; ` +
        `pending ${s7.pending}: ${s7.pendingReasons.map((r) => `${r.count}x ${r.text}`).join('; ')}\n`,
    );
    if (!opts.s8) return { side, s7 };

    // S8.
    process.stderr.write(`[bench] ${side} S8: ${S8_TITLE}\n`);
    const newSpecs = s8Specs(Math.max(1, Math.round(S8_SERVICES * opts.scale)));
    const s8From = audit.read();
    const meterBefore8 = await meter.allWrites();
    const { byReason: eventsBefore } = await serviceEvents(core);
    const stopAt = Date.now();
    await sideImpl.stop();
    const stoppedAt = Date.now();
    const creating = createAll(core, newSpecs, sideImpl, S7_CLIENTS, Date.now() + 120_000);
    await sideImpl.start();
    sampler = sideImpl.manager ? new ProcSampler(sideImpl.manager.pid) : undefined;
    const outcomes8 = await creating;
    const last8 = lastAnswered(outcomes8);
    const at8 = await watch.until(
      () => sideImpl.manager?.exited() !== undefined || allAssigned(newSpecs, (n) => watch.get(n)),
      CONVERGE_TIMEOUT_MS,
    );
    const exited8 = sideImpl.manager?.exited();
    if (exited8 !== undefined) throw new Error(exited8);
    const converged8 = Number.isFinite(at8) && allAssigned(newSpecs, (n) => watch.get(n));
    const settle8 = Date.now();
    if (side === 'floor') await sideImpl.stop();
    else await audit.settle(SETTLE_QUIET_MS, SETTLE_MAX_MS);
    const settleSeconds8 = (Date.now() - settle8) / 1000;
    const stats8 = sampler?.stop() ?? { peakRssBytes: 0, cpuSeconds: 0 };
    const meterWrites8 = diff(await meter.allWrites(), meterBefore8);
    const s8Events = audit.byController(s8From);
    const s7Names = new Set(specs.map((x) => x.name));
    const toS7 = s8Events.filter(
      (e) => e.objectRef?.resource === 'services' && s7Names.has(e.objectRef.name ?? ''),
    );
    const writesToS7: Counts = {};
    for (const e of toS7) writesToS7[auditKey(e)] = (writesToS7[auditKey(e)] ?? 0) + 1;
    const moved: string[] = [];
    let newlyAssignedOld = 0;
    for (const spec of specs) {
      const before = s7Addresses.get(spec.name) ?? [];
      const now = addressesOf(watch.get(spec.name));
      if (before.length === 0) {
        if (now.length > 0) newlyAssignedOld++;
        continue;
      }
      if ([...before].sort().join(',') !== [...now].sort().join(','))
        moved.push(`${spec.name}: ${before.join(',')} -> ${now.join(',') || 'none'}`);
    }
    const wrong8 = newSpecs
      .map((spec) => wrongAddresses(spec, addressesOf(watch.get(spec.name))))
      .filter((w): w is string => w !== undefined);
    const dup8 = duplicateAddresses(watch.list());
    const { byReason: eventsAfter } = await serviceEvents(core);
    const refusals = outcomes8.reduce((n, o) => n + o.refusals, 0);
    const s8: LbS8Result = {
      scenario: 'S8',
      side,
      newServices: newSpecs.length,
      stopSeconds: (stoppedAt - stopAt) / 1000,
      createRefusals: refusals,
      createRefusalSamples: [
        ...new Set(outcomes8.flatMap((o) => (o.refusalSample === undefined ? [] : [o.refusalSample]))),
      ].slice(0, 3),
      createFailures: outcomes8.filter((o) => o.error !== undefined).length,
      createSeconds: (last8 - stopAt) / 1000,
      converged: converged8,
      convergeSeconds: converged8 ? Math.max(0, at8 - last8) / 1000 : Number.NaN,
      convergeFromRestartSeconds: converged8 ? (at8 - stopAt) / 1000 : Number.NaN,
      moved: moved.length,
      movedSamples: moved.slice(0, 5),
      newlyAssignedOld,
      duplicates: dup8.duplicates,
      duplicateSamples: dup8.samples,
      wrongAddresses: wrong8.length,
      wrongSamples: wrong8.slice(0, 5),
      writesToS7,
      writesToS7Total: toS7.length,
      writesToS7Assigned: toS7.filter((e) => (s7Addresses.get(e.objectRef?.name ?? '') ?? []).length > 0)
        .length,
      s7ResourceVersionsChanged: specs.filter(
        (x) => watch.get(x.name)?.metadata?.resourceVersion !== s7Versions.get(x.name),
      ).length,
      controller: controllerWrites(s8Events),
      meterWrites: meterWrites8,
      meterStatusWrites: meterStatusWrites(meterWrites8),
      events: diff(eventsAfter, eventsBefore),
      settleSeconds: settleSeconds8,
      peakRssBytes: stats8.peakRssBytes,
      cpuSeconds: stats8.cpuSeconds,
    };
    process.stderr.write(
      `[bench] ${side} S8: stopped in ${s(s8.stopSeconds)} s, ${newSpecs.length} creates (${refusals} refused and sent again, ` +
        `${s8.createFailures} failed), new addresses ${converged8 ? `${s(s8.convergeSeconds)} s after the last create, ${s(s8.convergeFromRestartSeconds)} s after the SIGTERM` : 'NOT (timeout)'}; ` +
        `moved ${s8.moved}, duplicates ${s8.duplicates}, newly assigned old ${newlyAssignedOld}, ` +
        `writes to S7 Services ${s8.writesToS7Total} (${s8.writesToS7Assigned} to assigned ones; ` +
        `${s8.s7ResourceVersionsChanged} changed), all writes ${s8.controller.total}; ` +
        `peak RSS ${mib(stats8.peakRssBytes)} MiB, CPU ${stats8.cpuSeconds.toFixed(1)} s\n`,
    );
    return { side, s7, s8 };
  });
}
