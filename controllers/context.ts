/**
 * What every controller factory receives from the manager: one client, one informer factory (so
 * each kind is watched once), one events recorder, the parsed flags, the logger, the metrics
 * registry and the clock; for the allocation controllers, the ranges they allocate from.
 */
import type { Registry } from 'prom-client';
import type { AllocationRanges } from '../shared/allocator/clusterranges.ts';
import type { Clock } from '../shared/clock.ts';
import type { Config } from '../shared/config.ts';
import type { InformerFactory } from '../shared/informer/factory.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import type { EventRecorder } from '../shared/kube/events.ts';
import type { Logger } from '../shared/log.ts';

export interface ControllerContext {
  client: KubeClient;
  /** Informers that start once this replica leads. */
  informers: InformerFactory;
  events: EventRecorder;
  config: Config;
  log: Logger;
  registry: Registry;
  clock: Clock;
  /** The ranges to allocate from, checked against the cluster's (set when an allocator runs). */
  allocationRanges?: AllocationRanges;
}

/**
 * What a controller's part of the Service webhook is built from. The webhook runs in its own
 * worker thread (cmd/webhook.ts) on every replica, leader or not, so these are its own: a client
 * with no write fence, informers that start at once, Events not behind the fence; and the ranges
 * (set when an allocating controller is enabled).
 */
export interface AdmissionContext extends ControllerContext {
  /** This webhook replica's name in the maps' reservations (shared/allocator/pool.ts). */
  holder: string;
}

export type { Runnable } from '../shared/controller/manager.ts';
