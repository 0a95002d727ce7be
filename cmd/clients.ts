/**
 * What both entry points build from the flags: the client (QPS, burst, user agent, metrics), the
 * informer factory and the Events recorder. The manager's main thread and the webhook's worker
 * thread each build their own, on their own registry.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { Clock } from '../shared/clock.ts';
import type { Config } from '../shared/config.ts';
import { InformerFactory } from '../shared/informer/factory.ts';
import { KubeClient } from '../shared/kube/client.ts';
import { EventRecorder, KubeEventSink } from '../shared/kube/events.ts';
import type { Logger } from '../shared/log.ts';

export interface Clients {
  client: KubeClient;
  /**
   * The Events recorder's own client, with its own QPS/burst bucket of the same size, as
   * controller-runtime's recorder has (it builds its own clientset): a burst of Events (one per
   * Service assigned, say) never delays the writes they describe.
   */
  eventsClient: KubeClient;
  informers: InformerFactory;
  events: EventRecorder;
}

export function newClients(
  kubeConfig: KubeConfig,
  config: Config,
  deps: { userAgent: string; registry: Registry; clock: Clock; log: Logger },
): Clients {
  const { userAgent, registry, clock, log } = deps;
  const clientOptions = { qps: config.kubeApiQps, burst: config.kubeApiBurst, userAgent, registry, clock };
  const client = new KubeClient(kubeConfig, clientOptions);
  const eventsClient = new KubeClient(kubeConfig, clientOptions);
  const informers = new InformerFactory({ client, clock, log, minResyncPeriodMs: config.minResyncPeriodMs });
  const events = new EventRecorder({
    sink: new KubeEventSink(eventsClient),
    component: 'service-controller-manager',
    clock,
    log,
  });
  return { client, eventsClient, informers, events };
}
