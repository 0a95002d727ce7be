/**
 * hack/metallb/convert.ts (MetalLB IPAddressPools to our LoadBalancerIPPools) and the command
 * around it, hack/metallb-to-pools.ts: exact pools and notes for each MetalLB feature.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { convertMetalLB, InputError, type Note } from '../../hack/metallb/convert.ts';
import { run } from '../../hack/metallb-to-pools.ts';
import type { LoadBalancerIPPool } from '../../controllers/loadbalancer/types.ts';

const REPO = path.resolve(import.meta.dirname, '../..');

const metallbPool = (name: string, spec: Record<string, unknown>, namespace = 'metallb-system') => ({
  apiVersion: 'metallb.io/v1beta1',
  kind: 'IPAddressPool',
  metadata: {
    name,
    namespace,
    uid: '8d3c',
    resourceVersion: '42',
    annotations: { 'kubectl.kubernetes.io/x': 'y' },
  },
  spec,
});

const ours = (name: string, spec: LoadBalancerIPPool['spec']): LoadBalancerIPPool => ({
  apiVersion: 'scm.dev/v1alpha1',
  kind: 'LoadBalancerIPPool',
  metadata: { name },
  spec,
});

/** The three annotation renames, the last notes of every conversion. */
const RENAMES: Note[] = [
  {
    severity: 'info',
    message:
      'Services: rename annotation metallb.io/loadBalancerIPs (or metallb.universe.tf/loadBalancerIPs) to scm.dev/load-balancer-ips',
  },
  {
    severity: 'info',
    message:
      'Services: rename annotation metallb.io/address-pool (or metallb.universe.tf/address-pool) to scm.dev/address-pool',
  },
  {
    severity: 'info',
    message:
      'Services: rename annotation metallb.io/allow-shared-ip (or metallb.universe.tf/allow-shared-ip) to scm.dev/allow-shared-ip',
  },
];

const REF = 'IPAddressPool metallb-system/p';

describe('MetalLB to LoadBalancerIPPool conversion', () => {
  describe('IPAddressPool fields', () => {
    it('a pool keeps its name and addresses (CIDRs, /32, ranges, IPv6), drops its namespace and server fields', () => {
      const addresses = ['192.0.2.0/24', '198.51.100.7/32', '198.51.100.10-198.51.100.20', '2001:db8::/120'];
      expect(convertMetalLB([metallbPool('p', { addresses })])).to.deep.equal({
        pools: [ours('p', { addresses })],
        notes: RENAMES,
      });
    });

    it('autoAssign and avoidBuggyIPs are copied when set, left to our defaults when not', () => {
      const { pools } = convertMetalLB([
        metallbPool('a', { addresses: ['192.0.2.0/24'], autoAssign: false, avoidBuggyIPs: true }),
        metallbPool('b', { addresses: ['198.51.100.0/24'], autoAssign: true, avoidBuggyIPs: false }),
        metallbPool('c', { addresses: ['203.0.113.0/24'] }),
      ]);
      expect(pools).to.deep.equal([
        ours('a', { addresses: ['192.0.2.0/24'], autoAssign: false, avoidBuggyIPs: true }),
        ours('b', { addresses: ['198.51.100.0/24'], autoAssign: true, avoidBuggyIPs: false }),
        ours('c', { addresses: ['203.0.113.0/24'] }),
      ]);
    });

    it('labels are copied, other metadata is not', () => {
      const pool = metallbPool('p', { addresses: ['192.0.2.0/24'] });
      const { pools } = convertMetalLB([
        { ...pool, metadata: { ...pool.metadata, labels: { tier: 'public' } } },
      ]);
      expect(pools[0].metadata).to.deep.equal({ name: 'p', labels: { tier: 'public' } });
    });

    it('a CIDR with host bits set becomes its network, as MetalLB reads it, with a note', () => {
      const { pools, notes } = convertMetalLB([
        metallbPool('p', { addresses: ['192.0.2.77/24', '2001:db8::1:5/112'] }),
      ]);
      expect(pools[0].spec.addresses).to.deep.equal(['192.0.2.0/24', '2001:db8::1:0/112']);
      expect(notes.slice(0, 2)).to.deep.equal([
        {
          severity: 'info',
          object: REF,
          message:
            'address "192.0.2.77/24" has host bits set; MetalLB uses its network, written as "192.0.2.0/24"',
        },
        {
          severity: 'info',
          object: REF,
          message:
            'address "2001:db8::1:5/112" has host bits set; MetalLB uses its network, written as "2001:db8::1:0/112"',
        },
      ]);
    });

    it('spaces around a range and its "-" are dropped, with a note', () => {
      const { pools, notes } = convertMetalLB([
        metallbPool('p', { addresses: [' 192.0.2.10 - 192.0.2.20 '] }),
      ]);
      expect(pools[0].spec.addresses).to.deep.equal(['192.0.2.10-192.0.2.20']);
      expect(notes[0]).to.deep.equal({
        severity: 'info',
        object: REF,
        message: 'address " 192.0.2.10 - 192.0.2.20 " written as "192.0.2.10-192.0.2.20"',
      });
    });

    it('an address our CRD would refuse is copied as is with a warning naming it', () => {
      const bad = ['192.0.2.20-192.0.2.10', '192.0.2.1-2001:db8::1', '192.0.2.1', '192.0.2.0/33', 'pool'];
      const { pools, notes } = convertMetalLB([metallbPool('p', { addresses: bad })]);
      expect(pools[0].spec.addresses).to.deep.equal(bad);
      expect(notes.slice(0, bad.length)).to.deep.equal(
        bad.map((a) => ({
          severity: 'warning',
          object: REF,
          message: `address ${JSON.stringify(a)} is neither a CIDR nor a range of two addresses of one family (the first not after the last); copied as is, and the API server will refuse the pool until it is fixed`,
        })),
      );
    });
  });

  describe('serviceAllocation', () => {
    it('priority becomes priority; 0, which MetalLB reads as no priority, becomes none', () => {
      const { pools } = convertMetalLB([
        metallbPool('a', { addresses: ['192.0.2.0/24'], serviceAllocation: { priority: 10 } }),
        metallbPool('b', { addresses: ['198.51.100.0/24'], serviceAllocation: { priority: 0 } }),
      ]);
      expect(pools.map((p) => p.spec.priority)).to.deep.equal([10, undefined]);
      expect(pools[1].spec).to.not.have.property('priority');
    });

    it('a negative priority is left unset with a warning', () => {
      const { pools, notes } = convertMetalLB([
        metallbPool('p', { addresses: ['192.0.2.0/24'], serviceAllocation: { priority: -5 } }),
      ]);
      expect(pools[0].spec).to.deep.equal({ addresses: ['192.0.2.0/24'] });
      expect(notes[0]).to.deep.equal({
        severity: 'warning',
        object: REF,
        message: 'serviceAllocation.priority -5 is not a positive integer; left unset (no priority)',
      });
    });

    it('namespaces become a namespaceSelector on kubernetes.io/metadata.name In the list', () => {
      const { pools, notes } = convertMetalLB([
        metallbPool('p', {
          addresses: ['192.0.2.0/24'],
          serviceAllocation: { namespaces: ['team-a', 'team-b'] },
        }),
      ]);
      expect(pools[0].spec).to.deep.equal({
        addresses: ['192.0.2.0/24'],
        namespaceSelector: {
          matchExpressions: [
            { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['team-a', 'team-b'] },
          ],
        },
      });
      expect(notes).to.deep.equal(RENAMES);
    });

    it('one namespaceSelector and one serviceSelector are copied as they are', () => {
      const namespaceSelector = { matchLabels: { env: 'prod' } };
      const serviceSelector = {
        matchLabels: { app: 'web' },
        matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['internal'] }],
      };
      const { pools, notes } = convertMetalLB([
        metallbPool('p', {
          addresses: ['192.0.2.0/24'],
          serviceAllocation: { namespaceSelectors: [namespaceSelector], serviceSelectors: [serviceSelector] },
        }),
      ]);
      expect(pools[0].spec).to.deep.equal({
        addresses: ['192.0.2.0/24'],
        serviceSelector,
        namespaceSelector,
      });
      expect(notes).to.deep.equal(RENAMES);
    });

    it('several serviceSelectors: the first is kept, a warning names the ones not converted', () => {
      const { pools, notes } = convertMetalLB([
        metallbPool('p', {
          addresses: ['192.0.2.0/24'],
          serviceAllocation: {
            serviceSelectors: [{ matchLabels: { app: 'web' } }, { matchLabels: { app: 'api' } }],
          },
        }),
      ]);
      expect(pools[0].spec.serviceSelector).to.deep.equal({ matchLabels: { app: 'web' } });
      expect(notes[0]).to.deep.equal({
        severity: 'warning',
        object: REF,
        message:
          'serviceAllocation: MetalLB takes a Service matching any of 2: serviceSelectors[0] {"matchLabels":{"app":"web"}}, serviceSelectors[1] {"matchLabels":{"app":"api"}}; ours has one serviceSelector: kept serviceSelectors[0] {"matchLabels":{"app":"web"}}; not converted: serviceSelectors[1] {"matchLabels":{"app":"api"}}. The pool now serves fewer Services than under MetalLB: merge them into one selector or split the pool',
      });
    });

    it('namespaces and namespaceSelectors together: the namespaces are kept, a warning names the selectors not converted', () => {
      const { pools, notes } = convertMetalLB([
        metallbPool('p', {
          addresses: ['192.0.2.0/24'],
          serviceAllocation: {
            namespaces: ['team-a'],
            namespaceSelectors: [{ matchLabels: { env: 'prod' } }],
          },
        }),
      ]);
      expect(pools[0].spec.namespaceSelector).to.deep.equal({
        matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['team-a'] }],
      });
      expect(notes[0]).to.deep.equal({
        severity: 'warning',
        object: REF,
        message:
          'serviceAllocation: MetalLB takes a namespace matching any of 2: namespaces ["team-a"], namespaceSelectors[0] {"matchLabels":{"env":"prod"}}; ours has one namespaceSelector: kept namespaces ["team-a"]; not converted: namespaceSelectors[0] {"matchLabels":{"env":"prod"}}. The pool now serves fewer namespaces than under MetalLB: merge them into one selector or split the pool',
      });
    });

    it('a selecting pool without a priority next to a pool without serviceAllocation gets a note about the order', () => {
      const { notes } = convertMetalLB([
        metallbPool('p', { addresses: ['192.0.2.0/24'], serviceAllocation: { namespaces: ['team-a'] } }),
        metallbPool('general', { addresses: ['198.51.100.0/24'] }),
      ]);
      expect(notes).to.deep.equal([
        {
          severity: 'info',
          object: REF,
          message:
            'MetalLB tries this pool before pools without a serviceAllocation for the Services it selects; ours orders pools by priority, then name: give it a priority to keep that order',
        },
        ...RENAMES,
      ]);
    });
  });

  describe('other objects', () => {
    it('L2Advertisement, BGPAdvertisement, BGPPeer, Community and BFDProfile are skipped: announcing stays with the data plane', () => {
      const kinds = ['L2Advertisement', 'BGPAdvertisement', 'BGPPeer', 'Community', 'BFDProfile'];
      const { pools, notes } = convertMetalLB([
        metallbPool('p', { addresses: ['192.0.2.0/24'] }),
        ...kinds.map((kind) => ({
          apiVersion: kind === 'BGPPeer' ? 'metallb.io/v1beta2' : 'metallb.io/v1beta1',
          kind,
          metadata: { name: 'x', namespace: 'metallb-system' },
          spec: {},
        })),
      ]);
      expect(pools).to.have.length(1);
      expect(notes).to.deep.equal([
        ...kinds.map((kind) => ({
          severity: 'info',
          object: `${kind} metallb-system/x`,
          message:
            'skipped: announcing the addresses (ARP/NDP, BGP) stays with your data plane (kube-vip, a router); ours only assigns them',
        })),
        ...RENAMES,
      ]);
    });

    it('a Service with MetalLB annotations (either prefix) gets a warning per annotation to set ours', () => {
      const { notes } = convertMetalLB([
        metallbPool('p', { addresses: ['192.0.2.0/24'] }),
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: {
            name: 'web',
            namespace: 'shop',
            annotations: {
              'metallb.io/loadBalancerIPs': '192.0.2.7,2001:db8::7',
              'metallb.universe.tf/address-pool': 'p',
              'metallb.io/allow-shared-ip': 'shop',
            },
          },
        },
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'plain', namespace: 'shop' } },
      ]);
      expect(notes).to.deep.equal([
        {
          severity: 'warning',
          object: 'Service shop/web',
          message:
            'set annotation scm.dev/load-balancer-ips="192.0.2.7,2001:db8::7" (it has metallb.io/loadBalancerIPs, which ours does not read)',
        },
        {
          severity: 'warning',
          object: 'Service shop/web',
          message:
            'set annotation scm.dev/address-pool="p" (it has metallb.universe.tf/address-pool, which ours does not read)',
        },
        {
          severity: 'warning',
          object: 'Service shop/web',
          message:
            'set annotation scm.dev/allow-shared-ip="shop" (it has metallb.io/allow-shared-ip, which ours does not read)',
        },
        ...RENAMES,
      ]);
    });

    it('the items of a List (kubectl get -o yaml) are converted, null documents ignored', () => {
      const { pools } = convertMetalLB([
        null,
        { apiVersion: 'v1', kind: 'List', items: [metallbPool('a', { addresses: ['192.0.2.0/24'] })] },
        null,
      ]);
      expect(pools).to.deep.equal([ours('a', { addresses: ['192.0.2.0/24'] })]);
    });

    it('two pools of one name in two namespaces: the second is skipped with a warning (ours are cluster-scoped)', () => {
      const { pools, notes } = convertMetalLB([
        metallbPool('p', { addresses: ['192.0.2.0/24'] }, 'ns-a'),
        metallbPool('p', { addresses: ['198.51.100.0/24'] }, 'ns-b'),
      ]);
      expect(pools).to.deep.equal([ours('p', { addresses: ['192.0.2.0/24'] })]);
      expect(notes[0]).to.deep.equal({
        severity: 'warning',
        object: 'IPAddressPool ns-b/p',
        message:
          'skipped: IPAddressPool ns-a/p has the same name, and our pools are cluster-scoped; rename one and convert again',
      });
    });

    it('the ConfigMap configuration of MetalLB before 0.13 is skipped with a warning, other objects with a note', () => {
      const { notes } = convertMetalLB([
        metallbPool('p', { addresses: ['192.0.2.0/24'] }),
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'config', namespace: 'metallb-system' },
          data: { config: 'address-pools:\n- name: default\n' },
        },
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'controller', namespace: 'metallb-system' },
        },
      ]);
      expect(notes).to.deep.equal([
        {
          severity: 'warning',
          object: 'ConfigMap metallb-system/config',
          message:
            'skipped: MetalLB configuration before 0.13 (a ConfigMap); convert it to IPAddressPools with MetalLB first',
        },
        {
          severity: 'info',
          object: 'Deployment metallb-system/controller',
          message: 'skipped: not a MetalLB object',
        },
        ...RENAMES,
      ]);
    });

    it('input that is not MetalLB configuration throws an InputError naming the object', () => {
      const cases: [unknown[], string][] = [
        [['just text'], 'document 1 of the input is not a Kubernetes object'],
        [[{ metadata: { name: 'x' } }], 'object 1 of the input has no apiVersion and kind'],
        [
          [metallbPool('p', {})],
          'IPAddressPool metallb-system/p: spec.addresses must be a non-empty list of strings',
        ],
        [
          [metallbPool('p', { addresses: ['192.0.2.0/24'], serviceAllocation: { namespaces: 'team-a' } })],
          'IPAddressPool metallb-system/p: spec.serviceAllocation.namespaces must be a list',
        ],
        [
          [metallbPool('p', { addresses: ['192.0.2.0/24'], autoAssign: 'no' })],
          'IPAddressPool metallb-system/p: spec.autoAssign must be true or false',
        ],
      ];
      for (const [input, message] of cases) {
        expect(() => convertMetalLB(input)).to.throw(InputError, message);
      }
    });
  });

  describe('the command (hack/metallb-to-pools.ts)', () => {
    it('writes the pools as YAML documents on stdout and the notes on stderr, exit 0', () => {
      const input = [
        'apiVersion: metallb.io/v1beta1',
        'kind: IPAddressPool',
        'metadata: {name: a, namespace: metallb-system}',
        'spec: {addresses: [192.0.2.0/24], autoAssign: false}',
        '---',
        'apiVersion: metallb.io/v1beta1',
        'kind: IPAddressPool',
        'metadata: {name: b, namespace: metallb-system}',
        "spec: {addresses: ['2001:db8::/120'], serviceAllocation: {priority: 5}}",
        '---',
        'apiVersion: metallb.io/v1beta1',
        'kind: L2Advertisement',
        'metadata: {name: l2, namespace: metallb-system}',
        '',
      ].join('\n');
      expect(run(input)).to.deep.equal({
        stdout: [
          'apiVersion: scm.dev/v1alpha1',
          'kind: LoadBalancerIPPool',
          'metadata:',
          '  name: a',
          'spec:',
          '  addresses:',
          '    - 192.0.2.0/24',
          '  autoAssign: false',
          '---',
          'apiVersion: scm.dev/v1alpha1',
          'kind: LoadBalancerIPPool',
          'metadata:',
          '  name: b',
          'spec:',
          '  addresses:',
          '    - 2001:db8::/120',
          '  priority: 5',
          '',
        ].join('\n'),
        stderr: [
          'note: L2Advertisement metallb-system/l2: skipped: announcing the addresses (ARP/NDP, BGP) stays with your data plane (kube-vip, a router); ours only assigns them',
          ...RENAMES.map((n) => `note: ${n.message}`),
          '',
        ].join('\n'),
        code: 0,
      });
    });

    it('input that is not YAML exits 1 naming the parse error, nothing on stdout', () => {
      expect(run('spec: [unclosed\n')).to.deep.equal({
        stdout: '',
        stderr: 'error: the input is not YAML: deficient indentation (2:1)\n',
        code: 1,
      });
    });

    it('input without an IPAddressPool exits 1 saying so', () => {
      const result = run('');
      expect(result.code).to.equal(1);
      expect(result.stdout).to.equal('');
      expect(result.stderr.split('\n').slice(-2)).to.deep.equal([
        'error: the input holds no MetalLB IPAddressPool',
        '',
      ]);
    });

    it('malformed MetalLB objects exit 1 with the InputError', () => {
      expect(run('apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\n')).to.deep.equal(
        {
          stdout: '',
          stderr: 'error: IPAddressPool p: spec.addresses must be a non-empty list of strings\n',
          code: 1,
        },
      );
    });

    it('run as a process it reads stdin and exits with the code (node hack/metallb-to-pools.ts < file)', () => {
      const ok = spawnSync(process.execPath, ['hack/metallb-to-pools.ts'], {
        cwd: REPO,
        input:
          'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [192.0.2.0/24]}\n',
        encoding: 'utf8',
      });
      expect({ status: ok.status, stdout: ok.stdout }).to.deep.equal({
        status: 0,
        stdout:
          'apiVersion: scm.dev/v1alpha1\nkind: LoadBalancerIPPool\nmetadata:\n  name: a\nspec:\n  addresses:\n    - 192.0.2.0/24\n',
      });
      const bad = spawnSync(process.execPath, ['hack/metallb-to-pools.ts'], {
        cwd: REPO,
        input: '{',
        encoding: 'utf8',
      });
      expect({ status: bad.status, stdout: bad.stdout, stderr: bad.stderr }).to.deep.equal({
        status: 1,
        stdout: '',
        stderr: 'error: the input is not YAML: unexpected end of the stream within a flow collection (1:2)\n',
      });
    });
  });
});
