/**
 * What every controller factory receives from the manager: one client, one informer factory (so
 * each kind is watched once), one events recorder, the parsed flags, the logger, the metrics
 * registry and the clock.
 */
import type { Registry } from 'prom-client';
import type { Clock } from '../shared/clock.ts';
import type { Config } from '../shared/config.ts';
import type { InformerFactory } from '../shared/informer/factory.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import type { EventRecorder } from '../shared/kube/events.ts';
import type { Logger } from '../shared/log.ts';

export interface ControllerContext {
  client: KubeClient;
  informers: InformerFactory;
  events: EventRecorder;
  config: Config;
  log: Logger;
  registry: Registry;
  clock: Clock;
}

export type { Runnable } from '../shared/controller/manager.ts';
