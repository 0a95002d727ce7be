import { expect } from 'chai';
import type { V1Service } from '@kubernetes/client-node';
import { boundText, checkAllocations, webhookFigures } from '../../../bench/allocation.ts';
import { histogram, histogramDelta, quantileBound, sumBy } from '../../../bench/promtext.ts';
import { nthService } from '../../../bench/servicecreates.ts';
import { renderAllocationSections } from '../../../bench/report.ts';
import type { BenchRun } from '../../../bench/run.ts';

function svc(name: string, spec: V1Service['spec']): V1Service {
  return { metadata: { name }, spec };
}

const SCRAPE_BEFORE = `# HELP controller_runtime_webhook_latency_seconds x
# TYPE controller_runtime_webhook_latency_seconds histogram
controller_runtime_webhook_latency_seconds_bucket{le="0.005",webhook="/mutate-v1-service"} 1
controller_runtime_webhook_latency_seconds_bucket{le="0.05",webhook="/mutate-v1-service"} 2
controller_runtime_webhook_latency_seconds_bucket{le="1",webhook="/mutate-v1-service"} 2
controller_runtime_webhook_latency_seconds_bucket{le="+Inf",webhook="/mutate-v1-service"} 2
controller_runtime_webhook_latency_seconds_sum{webhook="/mutate-v1-service"} 0.02
controller_runtime_webhook_latency_seconds_count{webhook="/mutate-v1-service"} 2
controller_runtime_webhook_requests_total{webhook="/mutate-v1-service",code="200"} 2
`;

const SCRAPE_AFTER = `controller_runtime_webhook_latency_seconds_bucket{le="0.005",webhook="/mutate-v1-service"} 1
controller_runtime_webhook_latency_seconds_bucket{le="0.05",webhook="/mutate-v1-service"} 92
controller_runtime_webhook_latency_seconds_bucket{le="1",webhook="/mutate-v1-service"} 101
controller_runtime_webhook_latency_seconds_bucket{le="+Inf",webhook="/mutate-v1-service"} 102
controller_runtime_webhook_latency_seconds_sum{webhook="/mutate-v1-service"} 10.02
controller_runtime_webhook_latency_seconds_count{webhook="/mutate-v1-service"} 102
controller_runtime_webhook_latency_seconds_bucket{le="0.05",webhook="/other"} 500
controller_runtime_webhook_requests_total{webhook="/mutate-v1-service",code="200"} 100
controller_runtime_webhook_requests_total{webhook="/mutate-v1-service",code="403"} 4
`;

describe('bench allocation figures', () => {
  it('counts Services beyond the first on a ClusterIP or a nodePort, and missing values', () => {
    const services = [
      svc('a', { type: 'ClusterIP', clusterIP: '10.0.0.5', clusterIPs: ['10.0.0.5'] }),
      svc('b', { type: 'ClusterIP', clusterIP: '10.0.0.5', clusterIPs: ['10.0.0.5'] }),
      svc('c', { type: 'ClusterIP', clusterIP: '10.0.0.5', clusterIPs: ['10.0.0.5'] }),
      // 53/TCP and 53/UDP share one nodePort within a Service: not a duplicate.
      svc('d', {
        type: 'NodePort',
        clusterIPs: ['10.0.0.6'],
        ports: [
          { port: 53, protocol: 'TCP', nodePort: 30053 },
          { port: 53, protocol: 'UDP', nodePort: 30053 },
        ],
      }),
      svc('e', { type: 'NodePort', clusterIPs: ['10.0.0.7'], ports: [{ port: 80, nodePort: 30053 }] }),
      svc('f', { type: 'NodePort', clusterIPs: ['10.0.0.8'], ports: [{ port: 80 }] }),
      svc('g', { type: 'ClusterIP' }),
      svc('headless', { type: 'ClusterIP', clusterIP: 'None', clusterIPs: ['None'] }),
      svc('ext', { type: 'ExternalName', externalName: 'example.com' }),
    ];
    expect(checkAllocations(services)).to.deep.equal({
      services: 9,
      duplicateClusterIPs: 2,
      duplicateNodePorts: 1,
      missingClusterIPs: 1,
      missingNodePorts: 1,
    });
  });

  it('histogram delta between two scrapes and the bucket bound a quantile falls under', () => {
    const name = 'controller_runtime_webhook_latency_seconds';
    const want = { webhook: '/mutate-v1-service' };
    const h = histogramDelta(histogram(SCRAPE_AFTER, name, want), histogram(SCRAPE_BEFORE, name, want));
    expect(h.count).to.equal(100);
    expect(h.buckets).to.deep.equal([
      { le: 0.005, count: 0 },
      { le: 0.05, count: 90 },
      { le: 1, count: 99 },
      { le: Infinity, count: 100 },
    ]);
    expect(quantileBound(h, 0.5)).to.equal(0.05);
    expect(quantileBound(h, 0.99)).to.equal(1);
    expect(quantileBound(h, 1)).to.equal(Infinity);
    expect(quantileBound({ buckets: [], count: 0, sum: 0 }, 0.99)).to.be.NaN;
    expect(sumBy(SCRAPE_AFTER, 'controller_runtime_webhook_requests_total', want, 'code')).to.deep.equal({
      '200': 100,
      '403': 4,
    });
  });

  it("the webhook's figures: requests by code, bounds, and their text", () => {
    const w = webhookFigures(SCRAPE_AFTER, SCRAPE_BEFORE);
    expect(w.requestsByCode).to.deep.equal({ '200': 98, '403': 4 });
    expect(w.observations).to.equal(100);
    expect(w.meanSeconds).to.be.closeTo(0.1, 1e-9);
    expect([w.p50BoundSeconds, w.p99BoundSeconds, w.highestBoundSeconds]).to.deep.equal([0.05, 1, 1]);
    expect(boundText(w, 'p99')).to.equal('<= 1000 ms');
    expect(boundText({ ...w, p99BoundSeconds: null }, 'p99')).to.equal('> 1000 ms');
    expect(boundText({ ...w, observations: 0 }, 'p50')).to.equal('—');
  });

  it('every tenth Service is type NodePort', () => {
    const types = Array.from({ length: 20 }, (_, i) => nthService('s', i, 10).spec?.type);
    expect(types.filter((t) => t === 'NodePort')).to.have.length(2);
    expect(types[0]).to.equal('NodePort');
    expect(nthService('s', 3, 10).metadata?.name).to.equal('s-3');
  });

  it('renders nothing for a run without S5 and S6, and both targets tables when present', () => {
    const run = { results: [] } as unknown as BenchRun;
    expect(renderAllocationSections(run)).to.equal('');
    const latency = (p99: number) => ({ samples: 10, p50Seconds: 0.01, p99Seconds: p99, maxSeconds: p99 });
    const check = {
      services: 11,
      duplicateClusterIPs: 0,
      duplicateNodePorts: 0,
      missingClusterIPs: 0,
      missingNodePorts: 0,
    };
    const s5 = (mode: 'ours' | 'built-in', perSecond: number, p99: number) => ({
      scenario: 'S5',
      title: 't',
      mode,
      controllers: 'c',
      webhookRegistered: mode === 'ours',
      serviceClusterIpRange: '10.0.0.0/20',
      services: 10,
      nodePortServices: 1,
      clients: 10,
      wallSeconds: 10 / perSecond,
      createsPerSecond: perSecond,
      createLatency: latency(p99),
      failures: 0,
      failureSamples: [],
      rangeAllocationRequests: {},
      rangeAllocationWrites: 0,
      rangeAllocationConflicts: 0,
      check,
      peakRssBytes: 0,
      cpuSeconds: 0,
    });
    const text = renderAllocationSections({
      results: [],
      settings: { qps: 100, burst: 100, workers: 5, batchPeriod: '0s' },
      allocation: [s5('ours', 90, 0.11), s5('built-in', 100, 0.1)],
    } as unknown as BenchRun);
    expect(text).to.contain('| throughput ours / built-in >= 0.8 | 0.90 | met |');
    expect(text).to.contain('| create p99 ours <= built-in + 20 ms | 110.0 ms against 120.0 ms | met |');
    expect(text).to.contain('client QPS 100 / burst 100');
  });
});
