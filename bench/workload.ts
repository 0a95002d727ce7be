/**
 * The benchmark's world: a seeded model of Nodes, Services and Pods (IP, readiness, node), and a
 * writer that puts that model into the API server the way users and kubelets would (create, then
 * status), fast and in parallel. The model is also the expected result the comparator checks.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { isAlreadyExists, isNotFound, statusCode } from '../shared/kube/errors.ts';
import { inParallel } from '../test/integration/helpers/fixtures.ts';

export const NAMESPACE = 'bench';
export const ZONES = ['zone-a', 'zone-b', 'zone-c'];

/** mulberry32: small and seeded, so every run writes the same workload. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface PodModel {
  name: string;
  service: string;
  ip: string;
  node: string;
  ready: boolean;
}

/** What the API server should hold, and so what Endpoints and slices must show. */
export class Model {
  readonly services = new Set<string>();
  readonly pods = new Map<string, PodModel>();
  readonly nodes: string[] = [];
  private nextIp = 1;

  /** A fresh IP in 10.128.0.0/9, never reused. */
  allocateIp(): string {
    const n = this.nextIp++;
    return `10.${128 + ((n >> 16) & 127)}.${(n >> 8) & 255}.${n & 255}`;
  }

  podsOf(service: string): PodModel[] {
    return [...this.pods.values()].filter((p) => p.service === service);
  }
}

const PATCH_OPTS = { middleware: [], middlewareMergeStrategy: 'append' as const };
/** Tries of a write whose connection failed before any answer (an overloaded API server hanging up). */
const TRANSPORT_TRIES = 3;

/** Writes the model to the API server; every write goes through here so its end time is known. */
export class WorkloadWriter {
  readonly core: CoreV1Api;
  /** Wall time (ms since epoch) of the latest completed workload write. */
  lastWriteAt = 0;
  writes = 0;
  /** Wall time (ms since epoch) of every completed workload write, in completion order. */
  readonly writeTimes: number[] = [];
  /** Called as each pod status write is issued (the bench times readiness propagation with it). */
  onStatusWrite: ((pod: PodModel, issuedAt: number) => void) | undefined;
  private readonly width: number;

  constructor(kc: KubeConfig, width = 48) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.width = width;
  }

  /** Writes sent again after their connection failed without an answer (see `send`). */
  transportRetries = 0;

  private done(): void {
    this.writes++;
    this.lastWriteAt = Date.now();
    this.writeTimes.push(this.lastWriteAt);
  }

  /**
   * Sends a write, again (after a second) when its connection failed before any answer: an API
   * server saturated by S6 has closed the workload's connections. A create (delete) that was done
   * before the connection failed answers AlreadyExists (NotFound) the next time: `doneIf` says so.
   * Any other answer of the API server is final (thrown), as before.
   */
  private async send(
    write: () => Promise<unknown>,
    doneIf: (err: unknown) => boolean = () => false,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await write();
        return;
      } catch (err) {
        if (attempt > 1 && doneIf(err)) return;
        if (statusCode(err) !== undefined || attempt >= TRANSPORT_TRIES) throw err;
        this.transportRetries++;
        process.stderr.write(
          `[bench] workload: a write's connection failed (${err instanceof Error ? err.message : String(err)}); sending it again\n`,
        );
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  async namespace(): Promise<void> {
    await this.core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    this.done();
  }

  async nodes(model: Model, count: number): Promise<void> {
    const names = Array.from({ length: count }, (_, i) => `node-${String(i).padStart(3, '0')}`);
    await inParallel(names, this.width, async (name) => {
      const zone = ZONES[Number(name.slice(5)) % ZONES.length];
      await this.core.createNode({
        body: { metadata: { name, labels: { 'topology.kubernetes.io/zone': zone } } },
      });
      this.done();
      model.nodes.push(name);
    });
  }

  async services(model: Model, names: readonly string[]): Promise<void> {
    await inParallel(names, this.width, async (name) => {
      await this.core.createNamespacedService({
        namespace: NAMESPACE,
        body: {
          metadata: { name },
          spec: { selector: { svc: name }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
        },
      });
      this.done();
      model.services.add(name);
    });
  }

  /** Creates the pods (bound to their node) and writes each one's status: Running, IP, Ready. */
  async pods(model: Model, pods: readonly PodModel[]): Promise<void> {
    await inParallel(pods, this.width, async (pod) => {
      await this.send(
        () =>
          this.core.createNamespacedPod({
            namespace: NAMESPACE,
            body: {
              metadata: { name: pod.name, labels: { svc: pod.service } },
              spec: {
                nodeName: pod.node,
                containers: [
                  { name: 'c', image: 'registry.invalid/none:1', ports: [{ containerPort: 8080 }] },
                ],
              },
            },
          }),
        isAlreadyExists,
      );
      this.done();
      await this.status(pod);
      model.pods.set(pod.name, pod);
    });
  }

  /** Writes the pod's status as a kubelet would (JSON patch on the status subresource). */
  async status(pod: PodModel): Promise<void> {
    this.onStatusWrite?.(pod, Date.now());
    const now = new Date().toISOString();
    const status: V1Pod['status'] = {
      phase: 'Running',
      podIP: pod.ip,
      podIPs: [{ ip: pod.ip }],
      conditions: [
        { type: 'Ready', status: pod.ready ? 'True' : 'False', lastTransitionTime: now as unknown as Date },
        {
          type: 'ContainersReady',
          status: pod.ready ? 'True' : 'False',
          lastTransitionTime: now as unknown as Date,
        },
      ],
    };
    await this.send(() =>
      this.core.patchNamespacedPodStatus(
        { name: pod.name, namespace: NAMESPACE, body: [{ op: 'add', path: '/status', value: status }] },
        PATCH_OPTS,
      ),
    );
    this.done();
  }

  async deletePods(model: Model, names: readonly string[]): Promise<void> {
    await inParallel(names, this.width, async (name) => {
      await this.send(
        () => this.core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 }),
        isNotFound,
      );
      this.done();
      model.pods.delete(name);
    });
  }
}
