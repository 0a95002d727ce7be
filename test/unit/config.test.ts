import { expect } from 'chai';
import {
  DEFAULT_SERVICE_ACCOUNT_DIR,
  parseDuration,
  parseFlags,
  selectControllers,
  usage,
} from '../../shared/config.ts';
import { flagError } from './helpers/flagerror.ts';

const KNOWN = [
  { name: 'endpoint', enabledByDefault: true },
  { name: 'endpointslice', enabledByDefault: true },
  { name: 'service-lb', enabledByDefault: false },
];

describe('parseFlags', () => {
  it('uses the defaults when no flag is given', () => {
    const { config, help } = parseFlags([]);
    expect(help).to.equal(false);
    expect(config.concurrentEndpointSyncs).to.equal(5);
    expect(config.kubeApiQps).to.equal(20);
    expect(config.kubeApiBurst).to.equal(30);
    expect(config.endpointUpdatesBatchPeriodMs).to.equal(0);
    expect(config.controllers).to.deep.equal(['*']);
    expect(config.leaderElect).to.equal(undefined);
    expect(config.leaderElectLeaseDurationMs).to.equal(15_000);
    expect(config.leaderElectRenewDeadlineMs).to.equal(10_000);
    expect(config.leaderElectRetryPeriodMs).to.equal(2_000);
  });

  it('accepts --flag=value and --flag value', () => {
    const { config } = parseFlags([
      '--concurrent-endpoint-syncs=8',
      '--kube-api-qps',
      '50.5',
      '--leader-elect',
    ]);
    expect(config.concurrentEndpointSyncs).to.equal(8);
    expect(config.kubeApiQps).to.equal(50.5);
    expect(config.leaderElect).to.equal(true);
  });

  it('parses durations such as 500ms and 1m30s', () => {
    const { config } = parseFlags(['--endpoint-updates-batch-period=500ms', '--shutdown-timeout', '1m30s']);
    expect(config.endpointUpdatesBatchPeriodMs).to.equal(500);
    expect(config.shutdownTimeoutMs).to.equal(90_000);
    expect(parseDuration('1h2m3.5s')).to.equal(3_723_500);
    expect(parseDuration('10')).to.equal(undefined);
  });

  it('a bad int, duration or bool throws a FlagError naming the flag and the accepted form', () => {
    expect(flagError(() => parseFlags(['--concurrent-endpoint-syncs=five'])).message).to.equal(
      'invalid value "five" for flag --concurrent-endpoint-syncs: expected a whole number',
    );
    expect(flagError(() => parseFlags(['--shutdown-timeout=10'])).message).to.equal(
      `invalid value "10" for flag --shutdown-timeout: expected a duration such as '500ms', '1s' or '1m30s'`,
    );
    expect(flagError(() => parseFlags(['--leader-elect=yes'])).message).to.equal(
      'invalid value "yes" for flag --leader-elect: expected true or false',
    );
    expect(flagError(() => parseFlags(['--concurrent-endpoint-syncs=0'])).message).to.equal(
      'invalid value "0" for flag --concurrent-endpoint-syncs: must be >= 1',
    );
  });

  it('cluster access flags: --context and --service-account-dir', () => {
    const { config } = parseFlags([]);
    expect(config.context).to.equal('');
    expect(config.serviceAccountDir).to.equal('/var/run/secrets/kubernetes.io/serviceaccount');
    expect(config.serviceAccountDir).to.equal(DEFAULT_SERVICE_ACCOUNT_DIR);
    const custom = parseFlags(['--context=staging', '--service-account-dir', '/tmp/sa']).config;
    expect(custom.context).to.equal('staging');
    expect(custom.serviceAccountDir).to.equal('/tmp/sa');
    expect(flagError(() => parseFlags(['--service-account-dir='])).message).to.equal(
      'invalid value "" for flag --service-account-dir: must not be empty',
    );
    expect(flagError(() => parseFlags(['--context'])).message).to.equal(
      'flag --context needs a value: a string',
    );
    expect(usage()).to.include('--context').and.include('--service-account-dir');
  });

  it('EndpointSlice flags: defaults as kube-controller-manager, ranges enforced naming the flag', () => {
    const { config } = parseFlags([]);
    expect(config.maxEndpointsPerSlice).to.equal(100);
    expect(config.concurrentServiceEndpointSyncs).to.equal(5);
    expect(config.endpointSliceUpdatesBatchPeriodMs).to.equal(0);
    expect(config.mirroringConcurrentServiceEndpointSyncs).to.equal(5);
    expect(config.mirroringMaxEndpointsPerSubset).to.equal(1000);
    expect(config.mirroringEndpointSliceUpdatesBatchPeriodMs).to.equal(0);
    const custom = parseFlags([
      '--max-endpoints-per-slice=1000',
      '--endpointslice-updates-batch-period=1s',
      '--mirroring-max-endpoints-per-subset=1',
    ]).config;
    expect(custom.maxEndpointsPerSlice).to.equal(1000);
    expect(custom.endpointSliceUpdatesBatchPeriodMs).to.equal(1000);
    expect(custom.mirroringMaxEndpointsPerSubset).to.equal(1);
    expect(flagError(() => parseFlags(['--max-endpoints-per-slice=1001'])).message).to.equal(
      'invalid value "1001" for flag --max-endpoints-per-slice: must be between 1 and 1000',
    );
    expect(flagError(() => parseFlags(['--max-endpoints-per-slice=0'])).message).to.equal(
      'invalid value "0" for flag --max-endpoints-per-slice: must be between 1 and 1000',
    );
    expect(flagError(() => parseFlags(['--concurrent-service-endpoint-syncs=51'])).message).to.equal(
      'invalid value "51" for flag --concurrent-service-endpoint-syncs: must be between 1 and 50',
    );
    expect(flagError(() => parseFlags(['--mirroring-max-endpoints-per-subset=0'])).message).to.equal(
      'invalid value "0" for flag --mirroring-max-endpoints-per-subset: must be between 1 and 1000',
    );
  });

  it('rejects an unknown flag and a missing value', () => {
    expect(flagError(() => parseFlags(['--no-such-flag=1'])).message).to.equal(
      'unknown flag --no-such-flag (see --help)',
    );
    expect(flagError(() => parseFlags(['--kube-api-burst'])).message).to.equal(
      'flag --kube-api-burst needs a value: a whole number',
    );
  });

  it('rejects a renew deadline not shorter than the lease duration', () => {
    expect(
      flagError(() => parseFlags(['--leader-elect-lease-duration=10s', '--leader-elect-renew-deadline=10s']))
        .message,
    ).to.equal('--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration');
    expect(
      parseFlags(['--leader-elect-lease-duration=10s', '--leader-elect-renew-deadline=9s']).config
        .leaderElectRenewDeadlineMs,
    ).to.equal(9_000);
  });

  it('rejects a renew deadline within 1.2 retry periods and a lease too short for the write fence', () => {
    expect(
      flagError(() => parseFlags(['--leader-elect-retry-period=5s', '--leader-elect-renew-deadline=6s']))
        .message,
    ).to.equal('--leader-elect-renew-deadline must be more than 1.2 x --leader-elect-retry-period');
    expect(
      flagError(() =>
        parseFlags([
          '--leader-elect-lease-duration=4s',
          '--leader-elect-renew-deadline=3s',
          '--leader-elect-retry-period=1s',
        ]),
      ).message,
    ).to.equal('invalid value for flag --leader-elect-lease-duration: must be longer than 4s');
  });
  it('allocation flags: defaults, and bad ranges or CIDRs fail naming the flag', () => {
    const { config } = parseFlags([]);
    expect({
      ranges: config.serviceClusterIPRanges,
      ports: config.serviceNodePortRange,
      repair: config.repairIntervalMs,
      externalIPs: config.externalIPsAllowedCidrs,
      webhook: config.webhookBindAddress,
    }).to.deep.equal({
      ranges: [],
      ports: '30000-32767',
      repair: 180_000,
      externalIPs: undefined,
      webhook: ':9443',
    });
    expect(parseFlags(['--external-ips-allowed-cidrs=']).config.externalIPsAllowedCidrs).to.deep.equal([]);
    expect(
      parseFlags(['--service-cluster-ip-range=10.0.0.0/24,fd00::/112']).config.serviceClusterIPRanges,
    ).to.deep.equal(['10.0.0.0/24', 'fd00::/112']);
    expect(flagError(() => parseFlags(['--service-cluster-ip-range=10.0.0.0/8'])).message).to.equal(
      'invalid value "10.0.0.0/8" for flag --service-cluster-ip-range: 10.0.0.0/8 is too wide: an IPv4 service range may be at most a /12',
    );
    expect(
      flagError(() => parseFlags(['--service-cluster-ip-range=10.0.0.0/24,10.1.0.0/24'])).message,
    ).to.equal(
      'invalid value "10.0.0.0/24,10.1.0.0/24" for flag --service-cluster-ip-range: a dual-stack pair needs one IPv4 and one IPv6 CIDR',
    );
    expect(flagError(() => parseFlags(['--service-node-port-range=32767-30000'])).message).to.equal(
      'invalid value "32767-30000" for flag --service-node-port-range: "32767-30000" is not a port range like 30000-32767 (ports 1-65535)',
    );
    expect(flagError(() => parseFlags(['--external-ips-allowed-cidrs=192.0.2.0/24,nope'])).message).to.equal(
      'invalid value "192.0.2.0/24,nope" for flag --external-ips-allowed-cidrs: "nope" is not a CIDR',
    );
  });
});

describe('selectControllers', () => {
  it("'*' enables every controller that is on by default", () => {
    expect(selectControllers(['*'], KNOWN)).to.deep.equal(['endpoint', 'endpointslice']);
  });

  it("'-name' disables one and 'name' enables one that is off by default", () => {
    expect(selectControllers(['*', '-endpoint'], KNOWN)).to.deep.equal(['endpointslice']);
    expect(selectControllers(['*', 'service-lb'], KNOWN)).to.deep.equal([
      'endpoint',
      'endpointslice',
      'service-lb',
    ]);
    expect(selectControllers(['endpoint'], KNOWN)).to.deep.equal(['endpoint']);
  });

  it('an unknown name throws a FlagError naming --controllers', () => {
    expect(flagError(() => selectControllers(['*', '-bogus'], KNOWN)).message).to.equal(
      'invalid value "-bogus" for flag --controllers: known controllers are endpoint, endpointslice, service-lb',
    );
  });
});
