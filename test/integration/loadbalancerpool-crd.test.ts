/**
 * The LoadBalancerIPPool CRD (manifests/crds/loadbalancerippools.scm.dev.yaml) against a real API
 * server: what its schema and CEL rules accept and refuse (exact field paths and messages), the
 * defaults, the status subresource, discovery (cluster scope, short name) and the printer columns.
 */
import { expect } from 'chai';
import { Agent, fetch } from 'undici';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { installCRDs, startControlPlane, type ControlPlane } from '../../shared/localcontrolplane/index.ts';
import {
  POOL_GROUP,
  POOL_KIND,
  POOL_API_VERSION,
  POOL_PLURAL,
  POOL_VERSION,
  type LoadBalancerIPPool,
  type LoadBalancerIPPoolSpec,
  type LoadBalancerIPPoolStatus,
} from '../../controllers/loadbalancer/types.ts';

interface Cause {
  field?: string;
  message?: string;
}

interface Refusal {
  code: number;
  message: string;
  /** Every refused field and why (status.details.causes), in the API server's order. */
  causes: Cause[];
}

/**
 * Causes sorted by field: the API server reports schema errors of different fields in no fixed
 * order (CEL errors of one list come in index order).
 */
const byField = (causes: Cause[]): Cause[] =>
  [...causes].sort((a, b) => ((a.field ?? '') < (b.field ?? '') ? -1 : 1));

/** The Status of a refused API call. */
async function refusal(call: Promise<unknown>): Promise<Refusal> {
  try {
    await call;
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    const body = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as {
      message?: string;
      details?: { causes?: { field?: string; message?: string }[] };
    };
    return {
      code: e.code ?? 0,
      message: body?.message ?? String(err),
      causes: (body?.details?.causes ?? []).map((c) => ({ field: c.field, message: c.message })),
    };
  }
  throw new Error('expected the API server to refuse the call');
}

const pool = (name: string, spec: LoadBalancerIPPoolSpec): LoadBalancerIPPool => ({
  apiVersion: POOL_API_VERSION,
  kind: POOL_KIND,
  metadata: { name },
  spec,
});

/** A pool spec as the API server sees it, also the malformed ones the type would not allow. */
type LooseSpec = Record<string, unknown>;

/** The cause the API server adds when schema errors kept it from running the CEL rules. */
const RULES_NOT_CHECKED: Cause = {
  field: '<nil>',
  message:
    'Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation',
};

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

describe('the LoadBalancerIPPool CRD on a real API server', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let api: CustomObjectsApi;
  const coords = { group: POOL_GROUP, version: POOL_VERSION, plural: POOL_PLURAL };

  const create = (body: LoadBalancerIPPool | { metadata: { name: string }; spec: LooseSpec }) =>
    api.createClusterCustomObject({
      ...coords,
      body: { apiVersion: POOL_API_VERSION, kind: POOL_KIND, ...body },
    }) as Promise<LoadBalancerIPPool>;
  const read = (name: string) =>
    api.getClusterCustomObject({ ...coords, name }) as Promise<LoadBalancerIPPool>;
  /** The refusal of a pool named `name` with `spec`: its causes, after checking the code and summary. */
  const causesOf = async (name: string, spec: LooseSpec): Promise<Cause[]> => {
    const r = await refusal(create({ metadata: { name }, spec }));
    expect(r.code, r.message).to.equal(422);
    expect(r.message).to.match(new RegExp(`^LoadBalancerIPPool\\.scm\\.dev "${name}" is invalid: `));
    return r.causes;
  };

  before(async () => {
    cp = await startControlPlane();
    await installCRDs(cp.kubeConfig);
    api = cp.kubeConfig.makeApiClient(CustomObjectsApi);
  });
  after(async () => {
    await cp?.stop();
  });

  it('a valid dual-stack pool with CIDRs and ranges of both families is accepted, the booleans defaulted', async () => {
    const spec: LoadBalancerIPPoolSpec = {
      addresses: [
        '192.0.2.0/24',
        '2001:db8::/120',
        '198.51.100.10-198.51.100.20',
        '2001:db8:1::10-2001:db8:1::20',
      ],
      serviceSelector: { matchLabels: { app: 'web' } },
      namespaceSelector: {
        matchExpressions: [
          { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['prod', 'staging'] },
        ],
      },
      priority: 0,
    };
    await create(pool('dual-stack', spec));
    expect((await read('dual-stack')).spec).to.deep.equal({
      ...spec,
      autoAssign: true,
      avoidBuggyIPs: false,
      disabled: false,
    });
  });

  it('ranges of one address, across an octet or hextet boundary, and the whole address space are accepted', async () => {
    const addresses = [
      '192.0.2.7-192.0.2.7',
      '10.0.0.255-10.0.1.0',
      '0.0.0.0-255.255.255.255',
      '2001:db8::ffff-2001:db8::1:0',
      '::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      // Two spellings of one address are a range of one.
      '2001:db8::1-2001:DB8:0::0:1',
    ];
    await create(pool('edges', { addresses }));
    expect((await read('edges')).spec.addresses).to.deep.equal(addresses);
  });

  it('a pool with a CIDR with host bits set is refused naming the field and the network', async () => {
    const r = await refusal(create(pool('host-bits', { addresses: ['192.0.2.0/24', '192.0.2.1/24'] })));
    expect(r.code).to.equal(422);
    expect(r.message).to.equal(
      'LoadBalancerIPPool.scm.dev "host-bits" is invalid: spec.addresses[1]: Invalid value: "192.0.2.1/24": has host bits set; the network is 192.0.2.0/24',
    );
    expect(await causesOf('host-bits-6', { addresses: ['2001:db8::1/64'] })).to.deep.equal([
      {
        field: 'spec.addresses[0]',
        message: 'Invalid value: "2001:db8::1/64": has host bits set; the network is 2001:db8::/64',
      },
    ]);
  });

  it('a range that starts after it ends is refused, IPv4 and IPv6, naming each field', async () => {
    expect(
      await causesOf('backwards', {
        addresses: [
          '192.0.2.20-192.0.2.10',
          '10.0.1.0-10.0.0.255',
          '2001:db8::1-2001:db8::',
          '2001:db8::/64',
        ],
      }),
    ).to.deep.equal([
      {
        field: 'spec.addresses[0]',
        message: 'Invalid value: "192.0.2.20-192.0.2.10": a range must not start after it ends',
      },
      {
        field: 'spec.addresses[1]',
        message: 'Invalid value: "10.0.1.0-10.0.0.255": a range must not start after it ends',
      },
      {
        field: 'spec.addresses[2]',
        message: 'Invalid value: "2001:db8::1-2001:db8::": a range must not start after it ends',
      },
    ]);
  });

  it('a range of an IPv4 and an IPv6 address is refused', async () => {
    expect(await causesOf('mixed', { addresses: ['192.0.2.1-2001:db8::1'] })).to.deep.equal([
      {
        field: 'spec.addresses[0]',
        message: `Invalid value: "192.0.2.1-2001:db8::1": a range's two addresses must be of one family`,
      },
    ]);
  });

  it('an entry that is neither a CIDR nor a range is refused: a bare IP, a bad prefix, spaces, three addresses, IPv4-mapped', async () => {
    const bad = [
      '192.0.2.1',
      '192.0.2.0/33',
      'pool-a',
      '192.0.2.1 - 192.0.2.5',
      '192.0.2.1-192.0.2.2-192.0.2.3',
      '::ffff:192.0.2.0/120',
      '192.0.2.01-192.0.2.5',
    ];
    const message =
      'must be a CIDR (192.0.2.0/24, 2001:db8::/120) or a range of two addresses (192.0.2.10-192.0.2.20)';
    expect(await causesOf('malformed', { addresses: bad })).to.deep.equal(
      bad.map((value, i) => ({
        field: `spec.addresses[${i}]`,
        message: `Invalid value: "${value}": ${message}`,
      })),
    );
  });

  it('a pool without addresses, with an empty list, with a duplicate or with more than 64 entries is refused', async () => {
    expect(await causesOf('no-addresses', {})).to.deep.equal([
      { field: 'spec.addresses', message: 'Required value' },
      RULES_NOT_CHECKED,
    ]);
    expect(await causesOf('empty', { addresses: [] })).to.deep.equal([
      {
        field: 'spec.addresses',
        message: 'Invalid value: 0: spec.addresses in body should have at least 1 items',
      },
    ]);
    expect(await causesOf('duplicate', { addresses: ['192.0.2.0/24', '192.0.2.0/24'] })).to.deep.equal([
      { field: 'spec.addresses[1]', message: 'Duplicate value: "192.0.2.0/24"' },
    ]);
    const many = Array.from({ length: 65 }, (_, i) => `10.0.${i}.0/24`);
    expect(await causesOf('too-many', { addresses: many })).to.deep.equal([
      { field: 'spec.addresses', message: 'Too many: 65: must have at most 64 items' },
      RULES_NOT_CHECKED,
    ]);
  });

  it('a negative priority and a selector operator outside In/NotIn/Exists/DoesNotExist are refused', async () => {
    expect(
      byField(
        await causesOf('bad-fields', {
          addresses: ['192.0.2.0/24'],
          priority: -1,
          serviceSelector: { matchExpressions: [{ key: 'app', operator: 'Equals', values: ['web'] }] },
        }),
      ),
    ).to.deep.equal([
      RULES_NOT_CHECKED,
      {
        field: 'spec.priority',
        message: 'Invalid value: -1: spec.priority in body should be greater than or equal to 0',
      },
      {
        field: 'spec.serviceSelector.matchExpressions[0].operator',
        message: 'Unsupported value: "Equals": supported values: "In", "NotIn", "Exists", "DoesNotExist"',
      },
    ]);
  });

  it('a selector requirement with In and no values, or Exists with values, is refused naming its values', async () => {
    expect(
      byField(
        await causesOf('bad-selectors', {
          addresses: ['192.0.2.0/24'],
          serviceSelector: { matchExpressions: [{ key: 'app', operator: 'In' }] },
          namespaceSelector: {
            matchExpressions: [
              { key: 'team', operator: 'Exists', values: ['a'] },
              { key: 'tier', operator: 'NotIn', values: [] },
              { key: 'env', operator: 'DoesNotExist' },
            ],
          },
        }),
      ),
    ).to.deep.equal([
      {
        field: 'spec.namespaceSelector.matchExpressions[0].values',
        message: 'Invalid value: values must be empty for operator Exists',
      },
      {
        field: 'spec.namespaceSelector.matchExpressions[1].values',
        message: 'Invalid value: values must be non-empty for operator NotIn',
      },
      {
        field: 'spec.serviceSelector.matchExpressions[0].values',
        message: 'Invalid value: values must be non-empty for operator In',
      },
    ]);
  });

  it('status goes through the status subresource only: ignored on create and on spec updates, spec ignored on status writes', async () => {
    const status: LoadBalancerIPPoolStatus = {
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'AddressesAvailable',
          message: '256 of 256 addresses free',
          lastTransitionTime: '2026-01-02T03:04:05Z',
          observedGeneration: 1,
        },
      ],
      ipv4: { total: 256, used: 0, free: 256 },
      total: 256,
      used: 0,
      free: 256,
      observedGeneration: 1,
    };
    const created = await create({ ...pool('with-status', { addresses: ['192.0.2.0/24'] }), status });
    expect(created.status).to.equal(undefined);

    const written = (await api.patchClusterCustomObjectStatus(
      {
        ...coords,
        name: 'with-status',
        body: { spec: { addresses: ['198.51.100.0/24'] }, status },
      },
      mergePatch,
    )) as LoadBalancerIPPool;
    expect(written.spec.addresses).to.deep.equal(['192.0.2.0/24']);
    expect(written.status?.total).to.equal(256);
    expect(written.status?.conditions?.[0]).to.deep.include({ type: 'Ready', status: 'True' });

    const updated = (await api.patchClusterCustomObject(
      {
        ...coords,
        name: 'with-status',
        body: { spec: { addresses: ['198.51.100.0/24'] }, status: { total: 1 } },
      },
      mergePatch,
    )) as LoadBalancerIPPool;
    expect(updated.spec.addresses).to.deep.equal(['198.51.100.0/24']);
    expect(updated.status?.total).to.equal(256);
    expect(updated.metadata.generation).to.equal(2);
  });

  it('a status condition with a status outside True/False/Unknown or without a reason is refused', async () => {
    await create(pool('bad-status', { addresses: ['192.0.2.0/24'] }));
    const r = await refusal(
      api.patchClusterCustomObjectStatus(
        {
          ...coords,
          name: 'bad-status',
          body: {
            status: {
              conditions: [
                { type: 'Ready', status: 'Yes', message: '', lastTransitionTime: '2026-01-02T03:04:05Z' },
              ],
              used: -1,
            },
          },
        },
        mergePatch,
      ),
    );
    expect(r.code).to.equal(422);
    expect(byField(r.causes)).to.deep.equal([
      RULES_NOT_CHECKED,
      { field: 'status.conditions[0].reason', message: 'Required value' },
      {
        field: 'status.conditions[0].status',
        message: 'Unsupported value: "Yes": supported values: "True", "False", "Unknown"',
      },
      // Through the status subresource this one message names the field without its path.
      {
        field: 'status.used',
        message: 'Invalid value: -1: used in body should be greater than or equal to 0',
      },
    ]);
  });

  it('discovery lists the pool as cluster-scoped with the short name lbpool and a status subresource', async () => {
    const list = await getJson<{
      resources: { name: string; namespaced: boolean; kind: string; shortNames?: string[] }[];
    }>(`/apis/${POOL_GROUP}/${POOL_VERSION}`);
    const pools = list.resources.filter((r) => r.name.startsWith(POOL_PLURAL));
    expect(
      pools.map((r) => ({ name: r.name, namespaced: r.namespaced, kind: r.kind, shortNames: r.shortNames })),
    ).to.deep.equal([
      { name: POOL_PLURAL, namespaced: false, kind: POOL_KIND, shortNames: ['lbpool'] },
      { name: `${POOL_PLURAL}/status`, namespaced: false, kind: POOL_KIND, shortNames: undefined },
    ]);
  });

  it('the server-side table shows Name, Addresses, Total, Used, Free, Ready and Age from spec and the status sums', async () => {
    await create(pool('table', { addresses: ['192.0.2.0/30', '2001:db8::/126'] }));
    await api.patchClusterCustomObjectStatus(
      {
        ...coords,
        name: 'table',
        body: {
          status: {
            conditions: [
              {
                type: 'Ready',
                status: 'True',
                reason: 'AddressesAvailable',
                message: '',
                lastTransitionTime: '2026-01-02T03:04:05Z',
              },
            ],
            ipv4: { total: 4, used: 1, free: 3 },
            ipv6: { total: 4, used: 0, free: 4 },
            total: 8,
            used: 1,
            free: 7,
          },
        },
      },
      mergePatch,
    );
    const table = await getJson<{
      kind: string;
      columnDefinitions: { name: string; type: string }[];
      rows: { cells: unknown[] }[];
    }>(
      `/apis/${POOL_GROUP}/${POOL_VERSION}/${POOL_PLURAL}/table`,
      'application/json;as=Table;v=v1;g=meta.k8s.io',
    );
    expect(table.kind).to.equal('Table');
    expect(table.columnDefinitions.map((c) => [c.name, c.type])).to.deep.equal([
      ['Name', 'string'],
      ['Addresses', 'string'],
      ['Total', 'integer'],
      ['Used', 'integer'],
      ['Free', 'integer'],
      ['Ready', 'string'],
      ['Age', 'date'],
    ]);
    expect(table.rows).to.have.length(1);
    // Age is a date the client renders; the rest as kubectl prints them.
    expect(table.rows[0].cells.slice(0, 6)).to.deep.equal([
      'table',
      '["192.0.2.0/30","2001:db8::/126"]',
      8,
      1,
      7,
      'True',
    ]);
  });

  /** GET a path with the admin client certificate and an Accept header, as JSON. */
  async function getJson<T>(path: string, accept = 'application/json'): Promise<T> {
    const agent = new Agent({
      connect: { ca: cp.certs.caCertPem, cert: cp.certs.adminCertPem, key: cp.certs.adminKeyPem },
    });
    try {
      const res = await fetch(`${cp.apiServerUrl}${path}`, { dispatcher: agent, headers: { accept } });
      const text = await res.text();
      if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${text}`);
      return JSON.parse(text) as T;
    } finally {
      await agent.close();
    }
  }
});
