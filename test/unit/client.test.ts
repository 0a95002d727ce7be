import { expect } from 'chai';
import { namespacedPath, resourceOfPath } from '../../shared/kube/client.ts';

describe('namespacedPath', () => {
  it('names a namespaced collection and one object in it, under the core and a group API', () => {
    expect(namespacedPath('/api/v1', 'endpoints', 'ns')).to.equal('/api/v1/namespaces/ns/endpoints');
    expect(namespacedPath('/apis/discovery.k8s.io/v1', 'endpointslices', 'ns', 's-abc')).to.equal(
      '/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices/s-abc',
    );
    expect(resourceOfPath(namespacedPath('/api/v1', 'endpoints', 'ns', 'svc'))).to.equal('endpoints');
  });
});

describe('resourceOfPath', () => {
  it('names endpoints for a namespaced core object and for its collection', () => {
    expect(resourceOfPath('/api/v1/namespaces/n/endpoints/s')).to.equal('endpoints');
    expect(resourceOfPath('/api/v1/namespaces/n/endpoints')).to.equal('endpoints');
  });

  it('names endpointslices under a group API and ignores the query string', () => {
    expect(resourceOfPath('/apis/discovery.k8s.io/v1/namespaces/n/endpointslices')).to.equal(
      'endpointslices',
    );
    expect(resourceOfPath('/apis/discovery.k8s.io/v1/namespaces/n/endpointslices/s-abc?dryRun=All')).to.equal(
      'endpointslices',
    );
  });

  it('appends the subresource, as pods/status', () => {
    expect(resourceOfPath('/api/v1/namespaces/n/pods/p/status')).to.equal('pods/status');
  });

  it('names namespaces for the namespace object and the namespace list', () => {
    expect(resourceOfPath('/api/v1/namespaces/n')).to.equal('namespaces');
    expect(resourceOfPath('/api/v1/namespaces')).to.equal('namespaces');
  });

  it('names the namespace subresources status and finalize', () => {
    expect(resourceOfPath('/api/v1/namespaces/n/status')).to.equal('namespaces/status');
    expect(resourceOfPath('/api/v1/namespaces/n/finalize')).to.equal('namespaces/finalize');
  });

  it('names cluster-scoped resources and returns other for paths outside the API', () => {
    expect(resourceOfPath('/api/v1/nodes/node-1')).to.equal('nodes');
    expect(resourceOfPath('/healthz')).to.equal('other');
    expect(resourceOfPath('/api/v1')).to.equal('other');
  });
});
