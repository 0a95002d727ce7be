/**
 * The floor: how fast a bare client loop gets writes into the API server at the same QPS/burst and
 * worker count, with no informer, no diffing, no queue. Measured once per run on a fresh control
 * plane: `workers` loops share one token bucket (our KubeClient's, the same as the manager's) and
 * issue creates and then updates of 100-endpoint EndpointSlices. The floor of a scenario is then
 * the time the reference's writes would take at that measured rate, less the part that fits inside
 * the workload's own duration (a controller can write while the workload still runs), plus one
 * write until a watch delivers it: the fastest any controller could be seen to converge here after
 * the last workload write.
 */
import { DiscoveryV1Api } from '@kubernetes/client-node';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { startControlPlane } from '../shared/localcontrolplane/index.ts';
import { waitFor } from '../test/integration/helpers/wait.ts';
import { realClock } from '../shared/clock.ts';
import { SharedInformer } from '../shared/informer/informer.ts';
import { endpointSliceResource } from '../shared/informer/resources.ts';
import { KubeClient } from '../shared/kube/client.ts';
import { nopLogger } from '../shared/log.ts';
import type { Settings } from './processes.ts';
import { summarize } from './stats.ts';
import { WorkloadWriter } from './workload.ts';

export interface FloorCalibration {
  writes: number;
  seconds: number;
  /** Sustained writes per second of the bare loop (after its burst). */
  writesPerSecond: number;
  /** Median latency of one write with tokens to spare, seconds. */
  writeLatencySeconds: number;
  /** Median time from issuing such a write until a watch (like the comparator's) delivers it. */
  writeSeenSeconds: number;
}

const CALIBRATION_WRITES = 600;
/** Single writes, spaced within the QPS, for the latency of one write. */
const LATENCY_WRITES = 50;

function slice(i: number): V1EndpointSlice {
  return {
    metadata: { name: `floor-${i}`, labels: { 'kubernetes.io/service-name': `floor-${i}` } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: Array.from({ length: 100 }, (_, k) => ({
      addresses: [`10.200.${i % 256}.${k + 1}`],
      conditions: { ready: true, serving: true, terminating: false },
    })),
  };
}

export async function measureFloor(settings: Settings): Promise<FloorCalibration> {
  const cp = await startControlPlane();
  const stopWatch = new AbortController();
  let watching: Promise<void> | undefined;
  try {
    await new WorkloadWriter(cp.kubeConfig).namespace();
    // The comparator's view: when does a watch deliver each write (by resourceVersion)?
    const seenAt = new Map<string, number>();
    const watch = new SharedInformer<V1EndpointSlice>({
      resource: endpointSliceResource,
      client: new KubeClient(cp.kubeConfig, { qps: 0, burst: 0, userAgent: 'bench-floor-watch' }),
      clock: realClock,
      log: nopLogger,
    });
    const record = (o: V1EndpointSlice): void => {
      seenAt.set(o.metadata?.resourceVersion ?? '', Date.now());
    };
    watch.addEventHandler({ add: record, update: (_, n) => record(n), delete: () => undefined });
    watching = watch.run(stopWatch.signal);
    await watch.waitForSync(stopWatch.signal);

    const client = new KubeClient(cp.kubeConfig, {
      qps: settings.qps,
      burst: settings.burst,
      userAgent: 'bench-floor',
    });
    const api = client.api(DiscoveryV1Api);
    const stored = new Map<number, V1EndpointSlice>();
    const write = async (i: number): Promise<{ resourceVersion: string; at: number; seconds: number }> => {
      const at = Date.now();
      const previous = stored.get(i);
      const written =
        previous === undefined
          ? await api.createNamespacedEndpointSlice({ namespace: 'bench', body: slice(i) })
          : await api.replaceNamespacedEndpointSlice({
              name: `floor-${i}`,
              namespace: 'bench',
              body: { ...previous, endpoints: (previous.endpoints ?? []).slice().reverse() },
            });
      stored.set(i, written);
      return {
        resourceVersion: written.metadata?.resourceVersion ?? '',
        at,
        seconds: (Date.now() - at) / 1000,
      };
    };

    // Throughput: the loops as fast as the shared token bucket lets them.
    let next = 0;
    const started = Date.now();
    const loop = async (): Promise<void> => {
      while (next < CALIBRATION_WRITES) await write(next++ % 200);
    };
    await Promise.all(Array.from({ length: settings.workers }, loop));
    const seconds = (Date.now() - started) / 1000;

    // One write with tokens to spare, as a controller's last write after a quiet moment: from
    // issuing it until the API server answers, and until a watch delivers it.
    const single: { resourceVersion: string; at: number; seconds: number }[] = [];
    await realClock.sleep(1000);
    for (let k = 0; k < LATENCY_WRITES; k++) {
      single.push(await write(k));
      await realClock.sleep(1000 / settings.qps + 10);
    }
    const last = single.at(-1)?.resourceVersion ?? '';
    await waitFor('the floor watch to deliver the last write', () => seenAt.has(last), { timeoutMs: 30_000 });
    const seen = single.map((w) => ((seenAt.get(w.resourceVersion) ?? Number.NaN) - w.at) / 1000);
    const sustained = (CALIBRATION_WRITES - Math.min(settings.burst, CALIBRATION_WRITES)) / seconds;
    return {
      writes: CALIBRATION_WRITES,
      seconds,
      writesPerSecond: sustained > 0 ? sustained : CALIBRATION_WRITES / seconds,
      writeLatencySeconds: median(single.map((w) => w.seconds)),
      writeSeenSeconds: median(seen.filter((x) => Number.isFinite(x))),
    };
  } finally {
    stopWatch.abort();
    await watching?.catch(() => undefined);
    await cp.stop();
  }
}

/** The median, 0 for no samples (the floor then adds nothing for it). */
function median(seconds: number[]): number {
  return seconds.length === 0 ? 0 : summarize(seconds).p50Seconds;
}

/**
 * Floor convergence time of a scenario whose reference issued `writes` writes, as our comparator
 * would see it: the writes that do not fit in the workload's duration at the measured rate, plus two
 * deliveries of one write: the workload's last write reaching any controller (which must see it
 * before it can act), and the controller's last write reaching the comparator.
 */
export function floorSeconds(
  floor: FloorCalibration,
  burst: number,
  writes: number,
  workloadSeconds: number,
): number {
  const needed = Math.max(0, writes - burst) / floor.writesPerSecond;
  return Math.max(0, needed - workloadSeconds) + 2 * floor.writeSeenSeconds;
}

/** Width of one bin of a scenario's workload progress (`progressBins`). */
export const PROGRESS_BIN_MS = 100;

/**
 * The workload's progress as completed writes per `PROGRESS_BIN_MS` since `startedAt` (bin 0 holds
 * the writes done in the first 100 ms): what the fair floor spreads the controllers' writes by.
 */
export function progressBins(writeTimes: readonly number[], startedAt: number): number[] {
  const bins: number[] = [];
  for (const at of writeTimes) {
    if (at < startedAt) continue;
    const bin = Math.floor((at - startedAt) / PROGRESS_BIN_MS);
    while (bins.length <= bin) bins.push(0);
    bins[bin]++;
  }
  return bins;
}

/**
 * The fair floor of a scenario: the bare floor (`floorSeconds`) assumes a controller could issue
 * its writes at any time of the workload, even before the objects they are for exist. Here the
 * `writes` writes become due as the workload makes progress (the k-th of n once the workload has
 * done k/n of its writes, and its watch delivered that), and are issued as soon as they are due and
 * the token bucket (`burst`, refilled at the calibrated sustained rate) has a token. Converge is the
 * last write delivered to the comparator, counted from the workload's last write. A backlog that
 * the workload's own pace builds (S2: 2,000 Services' creates due within seconds) is then
 * counted, which every controller at this QPS must work off; with no backlog it equals the bare
 * floor.
 */
export function fairFloorSeconds(
  floor: FloorCalibration,
  burst: number,
  writes: number,
  bins: readonly number[],
  workloadSeconds: number,
): number {
  const total = bins.reduce((a, b) => a + b, 0);
  const seen = floor.writeSeenSeconds;
  if (writes <= 0 || total === 0) return 2 * seen;
  const rate = floor.writesPerSecond;
  const capacity = Math.max(1, burst);
  let tokens = capacity;
  let clock = 0;
  let lastDone = 0;
  let bin = 0;
  let doneByBin = bins[0];
  for (let k = 1; k <= writes; k++) {
    // The first bin by whose end the workload had done k/n of its writes.
    const needed = (k / writes) * total;
    while (doneByBin < needed - 1e-9 && bin < bins.length - 1) doneByBin += bins[++bin];
    const due = Math.min(((bin + 1) * PROGRESS_BIN_MS) / 1000, workloadSeconds) + seen;
    const issueAt = Math.max(due, clock);
    tokens = Math.min(capacity, tokens + (issueAt - clock) * rate);
    clock = issueAt;
    if (tokens < 1) {
      clock += (1 - tokens) / rate;
      tokens = 1;
    }
    tokens -= 1;
    lastDone = Math.max(lastDone, clock + seen);
  }
  return Math.max(2 * seen, lastDone - workloadSeconds);
}
