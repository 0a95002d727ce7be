/**
 * The floor: how fast a bare client loop gets writes into the API server at the same QPS/burst and
 * worker count, with no informer, no diffing, no queue. Measured once per run on a fresh control
 * plane: `workers` loops share one token bucket (our KubeClient's, the same as the manager's) and
 * issue creates and then updates of 100-endpoint EndpointSlices. The floor of a scenario is then
 * the time the reference's writes would take at that measured rate, less the part that fits inside
 * the workload's own duration (a controller can write while the workload still runs), plus one
 * write's latency: the fastest any controller could converge here after the last workload write.
 */
import { DiscoveryV1Api } from '@kubernetes/client-node';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { startControlPlane } from '../test/envtest/controlplane.ts';
import { KubeClient } from '../shared/kube/client.ts';
import type { Settings } from './processes.ts';
import { WorkloadWriter } from './workload.ts';

export interface FloorCalibration {
  writes: number;
  seconds: number;
  /** Sustained writes per second of the bare loop (after its burst). */
  writesPerSecond: number;
  /** Median latency of one write, seconds. */
  writeLatencySeconds: number;
}

const CALIBRATION_WRITES = 600;

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
  try {
    await new WorkloadWriter(cp.kubeConfig).namespace();
    const client = new KubeClient(cp.kubeConfig, {
      qps: settings.qps,
      burst: settings.burst,
      userAgent: 'bench-floor',
    });
    const api = client.api(DiscoveryV1Api);
    const latencies: number[] = [];
    const stored = new Map<number, V1EndpointSlice>();
    let next = 0;
    const started = Date.now();
    const loop = async (): Promise<void> => {
      while (next < CALIBRATION_WRITES) {
        const n = next++;
        const i = n % 200;
        const t0 = Date.now();
        const previous = stored.get(i);
        if (previous === undefined) {
          stored.set(i, await api.createNamespacedEndpointSlice({ namespace: 'bench', body: slice(i) }));
        } else {
          const body = { ...previous, endpoints: (previous.endpoints ?? []).slice().reverse() };
          stored.set(
            i,
            await api.replaceNamespacedEndpointSlice({ name: `floor-${i}`, namespace: 'bench', body }),
          );
        }
        latencies.push((Date.now() - t0) / 1000);
      }
    };
    await Promise.all(Array.from({ length: settings.workers }, loop));
    const seconds = (Date.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const sustained = (CALIBRATION_WRITES - Math.min(settings.burst, CALIBRATION_WRITES)) / seconds;
    return {
      writes: CALIBRATION_WRITES,
      seconds,
      writesPerSecond: sustained > 0 ? sustained : CALIBRATION_WRITES / seconds,
      writeLatencySeconds: latencies[Math.floor(latencies.length / 2)] ?? 0,
    };
  } finally {
    await cp.stop();
  }
}

/**
 * Floor convergence time of a scenario whose reference issued `writes` writes, as our comparator
 * would see it: the writes that do not fit in the workload's duration at the measured rate, one
 * write, and the comparator's own latency (half a poll on average, plus one read and compare).
 */
export function floorSeconds(
  floor: FloorCalibration,
  burst: number,
  writes: number,
  workloadSeconds: number,
  detectSeconds: number,
  pollSeconds: number,
): number {
  const needed = Math.max(0, writes - burst) / floor.writesPerSecond;
  return Math.max(0, needed - workloadSeconds) + floor.writeLatencySeconds + pollSeconds / 2 + detectSeconds;
}
