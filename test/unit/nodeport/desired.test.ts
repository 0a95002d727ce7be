import { expect } from 'chai';
import type { V1Service, V1ServicePort, V1ServiceSpec } from '@kubernetes/client-node';
import {
  type FieldError,
  heldNodePorts,
  isFieldError,
  nodePortClaims,
  type NodePortPlan,
  planNodePorts,
  releasedNodePorts,
} from '../../../controllers/nodeport/desired.ts';

function svc(spec: V1ServiceSpec): V1Service {
  return { metadata: { namespace: 'default', name: 'web' }, spec };
}

function port(number: number, protocol: string, nodePort?: number): V1ServicePort {
  return { port: number, protocol, ...(nodePort === undefined ? {} : { nodePort }) };
}

const nodePortSvc = (...ports: V1ServicePort[]): V1Service => svc({ type: 'NodePort', ports });

function plan(service: V1Service, old?: V1Service): NodePortPlan {
  const result = planNodePorts(service, old);
  if (result === undefined || isFieldError(result))
    throw new Error(`expected a plan, got ${JSON.stringify(result)}`);
  return result;
}

function fieldError(service: V1Service, old?: V1Service): FieldError {
  const result = planNodePorts(service, old);
  if (!isFieldError(result)) throw new Error(`expected a FieldError, got ${JSON.stringify(result)}`);
  return result;
}

describe('planNodePorts', () => {
  it('a ClusterIP Service needs no node port', () => {
    expect(planNodePorts(svc({ type: 'ClusterIP', ports: [port(80, 'TCP')] }), undefined)).to.equal(
      undefined,
    );
    expect(planNodePorts(svc({ ports: [port(80, 'TCP')] }), undefined)).to.equal(undefined);
  });

  it('a NodePort Service gets one slot to pick per port', () => {
    expect(plan(nodePortSvc(port(80, 'TCP'), port(443, 'TCP')))).to.deep.equal({
      ports: [{ field: 'spec.ports[0].nodePort' }, { field: 'spec.ports[1].nodePort' }],
      healthCheck: undefined,
    });
  });

  it('a requested nodePort becomes a request slot', () => {
    expect(plan(nodePortSvc(port(80, 'TCP', 30007), port(443, 'TCP'))).ports).to.deep.equal([
      { field: 'spec.ports[0].nodePort', request: 30007 },
      { field: 'spec.ports[1].nodePort' },
    ]);
  });

  it('53/TCP and 53/UDP share one node port: the second shares with the first', () => {
    expect(plan(nodePortSvc(port(53, 'TCP'), port(53, 'UDP'))).ports).to.deep.equal([
      { field: 'spec.ports[0].nodePort' },
      { field: 'spec.ports[1].nodePort', shareWith: 0 },
    ]);
  });

  it('53/TCP without a nodePort and 53/UDP asking for 30053: the first requests 30053, the second shares', () => {
    expect(plan(nodePortSvc(port(53, 'TCP'), port(53, 'UDP', 30053))).ports).to.deep.equal([
      { field: 'spec.ports[0].nodePort', request: 30053 },
      { field: 'spec.ports[1].nodePort', shareWith: 0 },
    ]);
  });

  it('53/TCP and 53/UDP both asking for 30053 share it', () => {
    expect(plan(nodePortSvc(port(53, 'TCP', 30053), port(53, 'UDP', 30053))).ports).to.deep.equal([
      { field: 'spec.ports[0].nodePort', request: 30053 },
      { field: 'spec.ports[1].nodePort', shareWith: 0 },
    ]);
  });

  it('53/TCP and 53/UDP asking for two different node ports get both', () => {
    expect(plan(nodePortSvc(port(53, 'TCP', 30053), port(53, 'UDP', 30054))).ports).to.deep.equal([
      { field: 'spec.ports[0].nodePort', request: 30053 },
      { field: 'spec.ports[1].nodePort', request: 30054 },
    ]);
  });

  it('two different port numbers with the same nodePort are a Duplicate value FieldError', () => {
    expect(fieldError(nodePortSvc(port(80, 'TCP', 30080), port(443, 'TCP', 30080)))).to.deep.equal({
      field: 'spec.ports[1].nodePort',
      message: 'Duplicate value: 30080: spec.ports[0] (port 80) uses it',
    });
  });

  it('a nodePort asked for by a later port of the same number is a duplicate of a third port using it', () => {
    expect(
      fieldError(nodePortSvc(port(53, 'TCP'), port(53, 'UDP', 30053), port(54, 'TCP', 30053))),
    ).to.deep.equal({
      field: 'spec.ports[2].nodePort',
      message: 'Duplicate value: 30053: spec.ports[0] (port 53) uses it',
    });
  });

  describe('LoadBalancer', () => {
    it('a LoadBalancer gets a node port per port by default', () => {
      expect(plan(svc({ type: 'LoadBalancer', ports: [port(80, 'TCP')] })).ports).to.deep.equal([
        { field: 'spec.ports[0].nodePort' },
      ]);
    });

    it('with allocateLoadBalancerNodePorts false, ports get none, but a requested nodePort is still requested', () => {
      const lb = svc({
        type: 'LoadBalancer',
        allocateLoadBalancerNodePorts: false,
        ports: [port(80, 'TCP'), port(443, 'TCP', 30443)],
      });
      expect(plan(lb)).to.deep.equal({
        ports: [
          { field: 'spec.ports[0].nodePort', none: true },
          { field: 'spec.ports[1].nodePort', request: 30443 },
        ],
        healthCheck: undefined,
      });
    });

    it('externalTrafficPolicy Local adds a health check slot to pick', () => {
      const lb = svc({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [port(80, 'TCP')] });
      expect(plan(lb)).to.deep.equal({
        ports: [{ field: 'spec.ports[0].nodePort' }],
        healthCheck: { field: 'spec.healthCheckNodePort' },
      });
    });

    it('a requested healthCheckNodePort is requested; on an update it is kept', () => {
      const lb = svc({
        type: 'LoadBalancer',
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 32000,
        ports: [port(80, 'TCP', 30080)],
      });
      expect(plan(lb).healthCheck).to.deep.equal({ field: 'spec.healthCheckNodePort', request: 32000 });
      const update = svc({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [port(80, 'TCP')] });
      expect(plan(update, lb)).to.deep.equal({
        ports: [{ field: 'spec.ports[0].nodePort', keep: 30080 }],
        healthCheck: { field: 'spec.healthCheckNodePort', keep: 32000 },
      });
    });

    it("a healthCheckNodePort equal to a port's nodePort is a Duplicate value FieldError", () => {
      const lb = svc({
        type: 'LoadBalancer',
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 30080,
        ports: [port(80, 'TCP', 30080)],
      });
      expect(fieldError(lb)).to.deep.equal({
        field: 'spec.healthCheckNodePort',
        message: 'Duplicate value: 30080: spec.ports[0] uses it',
      });
    });

    it('externalTrafficPolicy Cluster has no health check slot', () => {
      const lb = svc({ type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', ports: [port(80, 'TCP')] });
      expect(plan(lb).healthCheck).to.equal(undefined);
    });
  });

  describe('updates', () => {
    const old = nodePortSvc(port(80, 'TCP', 30080), port(53, 'UDP', 30053));

    it('ports that leave nodePort out keep their old ones, matched by port and protocol', () => {
      expect(plan(nodePortSvc(port(53, 'UDP'), port(80, 'TCP')), old).ports).to.deep.equal([
        { field: 'spec.ports[0].nodePort', keep: 30053 },
        { field: 'spec.ports[1].nodePort', keep: 30080 },
      ]);
    });

    it('a port that repeats its held nodePort keeps it', () => {
      expect(plan(nodePortSvc(port(80, 'TCP', 30080), port(53, 'UDP', 30053)), old).ports).to.deep.equal([
        { field: 'spec.ports[0].nodePort', keep: 30080 },
        { field: 'spec.ports[1].nodePort', keep: 30053 },
      ]);
    });

    it('a port whose protocol changed does not inherit the old nodePort', () => {
      expect(plan(nodePortSvc(port(80, 'UDP')), old).ports).to.deep.equal([
        { field: 'spec.ports[0].nodePort' },
      ]);
    });

    it('a shared TCP/UDP node port stays shared on an update that leaves it out', () => {
      const shared = nodePortSvc(port(53, 'TCP', 30053), port(53, 'UDP', 30053));
      expect(plan(nodePortSvc(port(53, 'TCP'), port(53, 'UDP')), shared).ports).to.deep.equal([
        { field: 'spec.ports[0].nodePort', keep: 30053 },
        { field: 'spec.ports[1].nodePort', shareWith: 0 },
      ]);
    });

    it('a change from ClusterIP to NodePort inherits nothing', () => {
      const clusterIP = svc({ type: 'ClusterIP', ports: [port(80, 'TCP', 30080)] });
      expect(plan(nodePortSvc(port(80, 'TCP')), clusterIP).ports).to.deep.equal([
        { field: 'spec.ports[0].nodePort' },
      ]);
    });
  });
});

describe('heldNodePorts', () => {
  it('lists each distinct node port once, with the health check port for Local LoadBalancers', () => {
    const lb = svc({
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32000,
      ports: [port(53, 'TCP', 30053), port(53, 'UDP', 30053), port(80, 'TCP', 30080)],
    });
    expect(heldNodePorts(lb)).to.deep.equal([30053, 30080, 32000]);
    expect(heldNodePorts(svc({ type: 'ClusterIP', ports: [port(80, 'TCP', 30080)] }))).to.deep.equal([]);
    expect(heldNodePorts(undefined)).to.deep.equal([]);
  });
});

describe('nodePortClaims', () => {
  const owner = { namespace: 'default', name: 'web' };

  it('claims a node port shared by 53/TCP and 53/UDP once', () => {
    expect(nodePortClaims(nodePortSvc(port(53, 'TCP', 30053), port(53, 'UDP', 30053)))).to.deep.equal([
      { owner, field: 'spec.ports[0].nodePort', text: '30053', value: 30053 },
    ]);
  });

  it('includes the healthCheckNodePort of a Local LoadBalancer', () => {
    const lb = svc({
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32000,
      ports: [port(80, 'TCP', 30080)],
    });
    expect(nodePortClaims(lb)).to.deep.equal([
      { owner, field: 'spec.ports[0].nodePort', text: '30080', value: 30080 },
      { owner, field: 'spec.healthCheckNodePort', text: '32000', value: 32000 },
    ]);
  });

  it('leaves out a healthCheckNodePort left behind by externalTrafficPolicy Cluster', () => {
    const lb = svc({
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Cluster',
      healthCheckNodePort: 32000,
      ports: [port(80, 'TCP', 30080)],
    });
    expect(nodePortClaims(lb).map((c) => c.value)).to.deep.equal([30080]);
  });

  it('a ClusterIP Service claims nothing even with stale nodePorts', () => {
    expect(nodePortClaims(svc({ type: 'ClusterIP', ports: [port(80, 'TCP', 30080)] }))).to.deep.equal([]);
  });
});

describe('releasedNodePorts', () => {
  const held = nodePortSvc(port(80, 'TCP', 30080), port(53, 'TCP', 30053), port(53, 'UDP', 30053));

  it('a change from NodePort to ClusterIP releases every node port', () => {
    const clusterIP = svc({ type: 'ClusterIP', ports: [port(80, 'TCP', 30080), port(53, 'TCP', 30053)] });
    expect(releasedNodePorts(held, clusterIP)).to.deep.equal([30080, 30053]);
  });

  it('a deleted Service releases every node port', () => {
    expect(releasedNodePorts(held, undefined)).to.deep.equal([30080, 30053]);
  });

  it('switching a LoadBalancer from Local to Cluster releases the health check port only', () => {
    const local = svc({
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32000,
      ports: [port(80, 'TCP', 30080)],
    });
    const cluster = svc({
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Cluster',
      healthCheckNodePort: 32000,
      ports: [port(80, 'TCP', 30080)],
    });
    expect(releasedNodePorts(local, cluster)).to.deep.equal([32000]);
  });

  it('an update that keeps the node ports releases nothing', () => {
    expect(releasedNodePorts(held, held)).to.deep.equal([]);
  });
});
