/**
 * Flags -> one typed, validated configuration. Names follow kube-controller-manager where the
 * meaning is the same. A bad value fails at start with a message naming the flag and the accepted
 * form; nothing is half-applied.
 */
import ipaddr from 'ipaddr.js';
import { IPRange, PortRange } from './allocator/ranges.ts';
import { FENCE_MARGIN_MS } from './leaderelection.ts';
import { parseBindAddress } from './health.ts';

/** Where the kubelet mounts a Pod's service account token, CA and namespace. */
export const DEFAULT_SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

export interface Config {
  kubeconfig: string;
  master: string;
  /** Empty: the kubeconfig's current context. */
  context: string;
  serviceAccountDir: string;
  controllers: string[];
  leaderElect: boolean | undefined; // undefined: default (on in cluster, off outside)
  leaderElectLeaseDurationMs: number;
  leaderElectRenewDeadlineMs: number;
  leaderElectRetryPeriodMs: number;
  leaderElectResourceName: string;
  leaderElectResourceNamespace: string;
  concurrentEndpointSyncs: number;
  endpointUpdatesBatchPeriodMs: number;
  concurrentServiceEndpointSyncs: number;
  maxEndpointsPerSlice: number;
  endpointSliceUpdatesBatchPeriodMs: number;
  mirroringConcurrentServiceEndpointSyncs: number;
  mirroringMaxEndpointsPerSubset: number;
  mirroringEndpointSliceUpdatesBatchPeriodMs: number;
  maxAdaptiveBatchPeriodMs: number;
  kubeApiQps: number;
  kubeApiBurst: number;
  verbosity: number;
  logFormat: 'json' | 'text' | 'auto';
  metricsBindAddress: string;
  /** HTTPS with TokenReview + SubjectAccessReview on /metrics; false: plain HTTP on loopback only. */
  metricsSecure: boolean;
  /** Empty: a self-signed certificate made at start. */
  metricsCertDir: string;
  healthProbeBindAddress: string;
  shutdownTimeoutMs: number;
  minResyncPeriodMs: number;
  /** Empty: the cluster's ServiceCIDRs. */
  serviceClusterIPRanges: string[];
  serviceNodePortRange: string;
  repairIntervalMs: number;
  /** undefined: any externalIP is allowed. */
  externalIPsAllowedCidrs: string[] | undefined;
  webhookBindAddress: string;
  webhookCertDir: string;
  webhookSecretName: string;
  webhookNamespace: string;
  webhookServiceName: string;
  webhookConfigurationName: string;
  webhookCertHosts: string[];
  loadBalancerClass: string;
  defaultLoadBalancer: boolean;
  reassignOnPoolChange: boolean;
  concurrentServiceSyncs: number;
}

type Kind = 'string' | 'int' | 'float' | 'bool' | 'duration' | 'list';

interface FlagSpec {
  name: string;
  kind: Kind;
  default: string;
  help: string;
  /** Extra check on the parsed value; returns an error text (without the flag name) or undefined. */
  check?: (v: number | string | boolean | string[]) => string | undefined;
}

const positive = (v: number | string | boolean | string[]): string | undefined =>
  typeof v === 'number' && v >= 1 ? undefined : 'must be >= 1';
const between =
  (min: number, max: number) =>
  (v: number | string | boolean | string[]): string | undefined =>
    typeof v === 'number' && v >= min && v <= max ? undefined : `must be between ${min} and ${max}`;
const nonNegative = (v: number | string | boolean | string[]): string | undefined =>
  typeof v === 'number' && v >= 0 ? undefined : 'must be >= 0';

export const FLAGS: readonly FlagSpec[] = [
  {
    name: 'kubeconfig',
    kind: 'string',
    default: '',
    help: 'Path to a kubeconfig. Default: KUBECONFIG, in-cluster, ~/.kube/config.',
  },
  { name: 'master', kind: 'string', default: '', help: 'The API server address; overrides the kubeconfig.' },
  {
    name: 'context',
    kind: 'string',
    default: '',
    help: "The kubeconfig context to use (not for in-cluster credentials). Default: the kubeconfig's current context.",
  },
  {
    name: 'service-account-dir',
    kind: 'string',
    default: DEFAULT_SERVICE_ACCOUNT_DIR,
    help: 'The folder in-cluster credentials are read from (token, ca.crt, namespace), as a Pod mounts them.',
    check: (v) => (v === '' ? 'must not be empty' : undefined),
  },
  {
    name: 'controllers',
    kind: 'list',
    default: '*',
    help: "Controllers to run: '*' for all on by default, 'name' to enable, '-name' to disable.",
  },
  {
    name: 'leader-elect',
    kind: 'bool',
    default: '',
    help: 'Elect a leader on a Lease before running controllers. Default: on in cluster, off outside.',
  },
  {
    name: 'leader-elect-lease-duration',
    kind: 'duration',
    default: '15s',
    help: 'Lease duration.',
    check: positive,
  },
  {
    name: 'leader-elect-renew-deadline',
    kind: 'duration',
    default: '10s',
    help: 'How long the leader retries renewing before it gives up.',
    check: positive,
  },
  {
    name: 'leader-elect-retry-period',
    kind: 'duration',
    default: '2s',
    help: 'Time between acquire/renew attempts.',
    check: positive,
  },
  {
    name: 'leader-elect-resource-name',
    kind: 'string',
    default: 'service-controller-manager',
    help: 'Name of the Lease.',
  },
  {
    name: 'leader-elect-resource-namespace',
    kind: 'string',
    default: 'kube-system',
    help: 'Namespace of the Lease.',
  },
  {
    name: 'concurrent-endpoint-syncs',
    kind: 'int',
    default: '5',
    help: 'Endpoints controller workers.',
    check: positive,
  },
  {
    name: 'endpoint-updates-batch-period',
    kind: 'duration',
    default: '0s',
    help: 'Delay before syncing a Service after a pod change, to batch changes.',
    check: nonNegative,
  },
  {
    name: 'concurrent-service-endpoint-syncs',
    kind: 'int',
    default: '5',
    help: 'EndpointSlice controller workers (1-50).',
    check: between(1, 50),
  },
  {
    name: 'max-endpoints-per-slice',
    kind: 'int',
    default: '100',
    help: 'Most endpoints one EndpointSlice holds (1-1000).',
    check: between(1, 1000),
  },
  {
    name: 'endpointslice-updates-batch-period',
    kind: 'duration',
    default: '0s',
    help: "Delay before syncing a Service's EndpointSlices after a pod change, to batch changes.",
    check: nonNegative,
  },
  {
    name: 'max-adaptive-batch-period',
    kind: 'duration',
    default: '100ms',
    help:
      'Longest wait before a pod-triggered sync of the endpoints and EndpointSlice controllers whose batch period is 0s, ' +
      'chosen from the recent pod events: long only while waiting collapses bursts of changes into fewer writes. 0s turns it off.',
    check: nonNegative,
  },
  {
    name: 'mirroring-concurrent-service-endpoint-syncs',
    kind: 'int',
    default: '5',
    help: 'EndpointSlice mirroring controller workers (1-50).',
    check: between(1, 50),
  },
  {
    name: 'mirroring-max-endpoints-per-subset',
    kind: 'int',
    default: '1000',
    help: 'Most addresses mirrored from one Endpoints subset (1-1000).',
    check: between(1, 1000),
  },
  {
    name: 'mirroring-endpointslice-updates-batch-period',
    kind: 'duration',
    default: '0s',
    help: 'Delay before mirroring an Endpoints change, to batch changes.',
    check: nonNegative,
  },
  {
    name: 'kube-api-qps',
    kind: 'float',
    default: '20',
    help: "Client-side requests per second to the API server (<= 0: no limit); the controllers' client and the webhook's each have this budget.",
  },
  {
    name: 'kube-api-burst',
    kind: 'int',
    default: '30',
    help: 'Client-side burst of requests to the API server.',
    check: positive,
  },
  { name: 'v', kind: 'int', default: '0', help: 'Log verbosity (0-10), like klog.', check: nonNegative },
  {
    name: 'log-format',
    kind: 'string',
    default: 'auto',
    help: "Log format: 'json', 'text' or 'auto' (text on a terminal, JSON otherwise).",
    check: (v) =>
      v === 'json' || v === 'text' || v === 'auto' ? undefined : "must be 'json', 'text' or 'auto'",
  },
  {
    name: 'metrics-bind-address',
    kind: 'string',
    default: ':8443',
    help: "Address of /metrics ('0' disables). Without --metrics-secure it must be a loopback address.",
  },
  {
    name: 'metrics-secure',
    kind: 'bool',
    default: 'true',
    help: 'Serve /metrics over HTTPS to callers whose bearer token the API server accepts (TokenReview) and who may get the path (SubjectAccessReview on nonResourceURLs /metrics); false serves plain HTTP, on a loopback address only.',
  },
  {
    name: 'metrics-cert-dir',
    kind: 'string',
    default: '',
    help: 'A folder with the /metrics serving certificate (tls.crt, tls.key), reloaded when it changes. Default: a self-signed certificate made at start.',
  },
  {
    name: 'health-probe-bind-address',
    kind: 'string',
    default: ':8081',
    help: "Address of /healthz and /readyz ('0' disables).",
  },
  {
    name: 'shutdown-timeout',
    kind: 'duration',
    default: '30s',
    help: 'How long a graceful shutdown may wait for in-flight syncs before aborting them.',
    check: positive,
  },
  {
    name: 'min-resync-period',
    kind: 'duration',
    default: '12h',
    help: 'Informers re-deliver every cached object every random period between 1x and 2x this (drift no event announces is corrected).',
    check: positive,
  },
  {
    name: 'service-cluster-ip-range',
    kind: 'list',
    default: '',
    help: "The ClusterIP range(s) our map allocates from: one CIDR, or an IPv4 and an IPv6 one for dual-stack (primary first). Must lie inside the cluster's ServiceCIDRs. Default: the ServiceCIDRs of the cluster.",
    check: (v) => checkServiceCidrs(v as string[]),
  },
  {
    name: 'service-node-port-range',
    kind: 'string',
    default: '30000-32767',
    help: "The node port range our map allocates from (inside the API server's).",
    check: (v) => checkPortRange(v as string),
  },
  {
    name: 'repair-interval',
    kind: 'duration',
    default: '3m',
    help: 'How often the ClusterIP and NodePort repair loops check the maps against every Service (and once at start).',
    check: positive,
  },
  {
    name: 'external-ips-allowed-cidrs',
    kind: 'list',
    default: '*',
    help: "CIDRs a Service's externalIPs may come from (CVE-2020-8554); '*' allows any, an empty value none.",
    check: (v) => checkAllowedCidrs(v as string[]),
  },
  {
    name: 'webhook-bind-address',
    kind: 'string',
    default: ':9443',
    help: "Where the admission webhook (HTTPS) listens; '0' turns it off.",
  },
  {
    name: 'webhook-cert-dir',
    kind: 'string',
    default: '',
    help: 'A folder with the webhook serving certificate (tls.crt, tls.key), e.g. from cert-manager; reloaded when it changes. Default: a self-managed CA and certificate kept in a Secret.',
  },
  {
    name: 'webhook-secret-name',
    kind: 'string',
    default: 'service-controller-manager-webhook-tls',
    help: 'The Secret (in --webhook-namespace) that keeps the self-managed CA and serving certificate.',
  },
  {
    name: 'webhook-namespace',
    kind: 'string',
    default: 'service-controller-manager',
    help: "Our own namespace: the webhook's Secret and Service live there, and the webhook exempts it.",
  },
  {
    name: 'webhook-service-name',
    kind: 'string',
    default: 'service-controller-manager-webhook',
    help: 'The Service in front of the webhook; the self-managed certificate is for <name>.<namespace>.svc.',
  },
  {
    name: 'webhook-configuration-name',
    kind: 'string',
    default: 'service-controller-manager',
    help: 'The MutatingWebhookConfiguration whose caBundle the self-managed certificates are injected into.',
  },
  {
    name: 'webhook-cert-hosts',
    kind: 'list',
    default: '',
    help: 'More DNS names or IPs for the self-managed certificate (e.g. 127.0.0.1 for a webhook reached by URL).',
  },
  {
    name: 'load-balancer-class',
    kind: 'string',
    default: '',
    help: 'The spec.loadBalancerClass that names this controller. Empty: it serves LoadBalancer Services without a class.',
    check: (v) => checkLoadBalancerClass(v as string),
  },
  {
    name: 'default-load-balancer',
    kind: 'bool',
    default: 'false',
    help: 'With --load-balancer-class, also serve LoadBalancer Services that have no class.',
  },
  {
    name: 'reassign-on-pool-change',
    kind: 'bool',
    default: 'false',
    help: 'Move a Service to a new address when its pool is deleted, shrunk or stops selecting it (default: it keeps the address and is told so).',
  },
  {
    name: 'concurrent-service-syncs',
    kind: 'int',
    default: '5',
    help: 'LoadBalancer Services reconciled at once (kube-controller-manager defaults to 1 for its cloud calls; ours are in memory).',
    check: positive,
  },
];

/** A label-style qualified name, as the API server requires of spec.loadBalancerClass. */
function checkLoadBalancerClass(v: string): string | undefined {
  if (v === '') return undefined;
  return /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(
    v,
  )
    ? undefined
    : 'expected a qualified name such as example.com/lb (an optional DNS prefix and a name of at most 63 characters)';
}

function checkServiceCidrs(cidrs: string[]): string | undefined {
  if (cidrs.length > 2) return 'expected one CIDR, or two (IPv4 and IPv6) for dual-stack';
  const families: string[] = [];
  for (const c of cidrs) {
    try {
      families.push(new IPRange(c).family);
    } catch (err) {
      return (err as Error).message;
    }
  }
  if (families.length === 2 && families[0] === families[1])
    return 'a dual-stack pair needs one IPv4 and one IPv6 CIDR';
  return undefined;
}

function checkPortRange(text: string): string | undefined {
  try {
    new PortRange(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function checkAllowedCidrs(cidrs: string[]): string | undefined {
  if (cidrs.length === 1 && cidrs[0] === '*') return undefined;
  const bad = cidrs.find((c) => {
    try {
      ipaddr.parseCIDR(c);
      return false;
    } catch {
      return true;
    }
  });
  return bad === undefined ? undefined : `"${bad}" is not a CIDR`;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration ("1s", "500ms", "1m30s", "0") into milliseconds; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    consumed = re.lastIndex;
  }
  return consumed === text.length && text.length > 0 ? total : undefined;
}

const FORMS: Record<Kind, string> = {
  string: 'a string',
  int: 'a whole number',
  float: 'a number',
  bool: 'true or false',
  duration: "a duration such as '500ms', '1s' or '1m30s'",
  list: 'a comma-separated list',
};

function parseValue(spec: FlagSpec, raw: string): number | string | boolean | string[] {
  const fail = (): never => {
    throw new FlagError(`invalid value "${raw}" for flag --${spec.name}: expected ${FORMS[spec.kind]}`);
  };
  let v: number | string | boolean | string[];
  switch (spec.kind) {
    case 'string':
      v = raw;
      break;
    case 'int':
      if (!/^-?\d+$/.test(raw)) fail();
      v = Number(raw);
      break;
    case 'float':
      if (!/^-?\d+(\.\d+)?$/.test(raw)) fail();
      v = Number(raw);
      break;
    case 'bool':
      if (raw !== 'true' && raw !== 'false') fail();
      v = raw === 'true';
      break;
    case 'duration': {
      const ms = parseDuration(raw);
      if (ms === undefined) fail();
      v = ms as number;
      break;
    }
    case 'list':
      v = raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
      break;
  }
  const problem = spec.check?.(v);
  if (problem) throw new FlagError(`invalid value "${raw}" for flag --${spec.name}: ${problem}`);
  return v;
}

export interface ParsedArgs {
  config: Config;
  help: boolean;
}

/** Parses argv (without node and script). Accepts `--flag=value`, `--flag value`, and bare `--bool`. */
export function parseFlags(argv: readonly string[]): ParsedArgs {
  const byName = new Map(FLAGS.map((f) => [f.name, f]));
  const raw = new Map<string, string>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    const m = /^--?([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new FlagError(`unexpected argument "${arg}": flags look like --name=value (see --help)`);
    const spec = byName.get(m[1]);
    if (!spec) throw new FlagError(`unknown flag --${m[1]} (see --help)`);
    let value = m[2];
    if (value === undefined) {
      if (spec.kind === 'bool') value = 'true';
      else if (i + 1 < argv.length) value = argv[++i];
      else throw new FlagError(`flag --${spec.name} needs a value: ${FORMS[spec.kind]}`);
    }
    raw.set(spec.name, value);
  }
  const get = (name: string): number | string | boolean | string[] | undefined => {
    const spec = byName.get(name)!;
    const text = raw.get(name) ?? spec.default;
    if (text === '' && spec.kind === 'bool') return undefined;
    return parseValue(spec, text);
  };
  const config: Config = {
    kubeconfig: get('kubeconfig') as string,
    master: get('master') as string,
    context: get('context') as string,
    serviceAccountDir: get('service-account-dir') as string,
    controllers: get('controllers') as string[],
    leaderElect: get('leader-elect') as boolean | undefined,
    leaderElectLeaseDurationMs: get('leader-elect-lease-duration') as number,
    leaderElectRenewDeadlineMs: get('leader-elect-renew-deadline') as number,
    leaderElectRetryPeriodMs: get('leader-elect-retry-period') as number,
    leaderElectResourceName: get('leader-elect-resource-name') as string,
    leaderElectResourceNamespace: get('leader-elect-resource-namespace') as string,
    concurrentEndpointSyncs: get('concurrent-endpoint-syncs') as number,
    endpointUpdatesBatchPeriodMs: get('endpoint-updates-batch-period') as number,
    concurrentServiceEndpointSyncs: get('concurrent-service-endpoint-syncs') as number,
    maxEndpointsPerSlice: get('max-endpoints-per-slice') as number,
    endpointSliceUpdatesBatchPeriodMs: get('endpointslice-updates-batch-period') as number,
    mirroringConcurrentServiceEndpointSyncs: get('mirroring-concurrent-service-endpoint-syncs') as number,
    mirroringMaxEndpointsPerSubset: get('mirroring-max-endpoints-per-subset') as number,
    mirroringEndpointSliceUpdatesBatchPeriodMs: get('mirroring-endpointslice-updates-batch-period') as number,
    maxAdaptiveBatchPeriodMs: get('max-adaptive-batch-period') as number,
    kubeApiQps: get('kube-api-qps') as number,
    kubeApiBurst: get('kube-api-burst') as number,
    verbosity: get('v') as number,
    logFormat: get('log-format') as Config['logFormat'],
    metricsBindAddress: get('metrics-bind-address') as string,
    metricsSecure: get('metrics-secure') as boolean,
    metricsCertDir: get('metrics-cert-dir') as string,
    healthProbeBindAddress: get('health-probe-bind-address') as string,
    shutdownTimeoutMs: get('shutdown-timeout') as number,
    minResyncPeriodMs: get('min-resync-period') as number,
    serviceClusterIPRanges: get('service-cluster-ip-range') as string[],
    serviceNodePortRange: get('service-node-port-range') as string,
    repairIntervalMs: get('repair-interval') as number,
    externalIPsAllowedCidrs: ((v: string[]) => (v.length === 1 && v[0] === '*' ? undefined : v))(
      get('external-ips-allowed-cidrs') as string[],
    ),
    webhookBindAddress: get('webhook-bind-address') as string,
    webhookCertDir: get('webhook-cert-dir') as string,
    webhookSecretName: get('webhook-secret-name') as string,
    webhookNamespace: get('webhook-namespace') as string,
    webhookServiceName: get('webhook-service-name') as string,
    webhookConfigurationName: get('webhook-configuration-name') as string,
    webhookCertHosts: get('webhook-cert-hosts') as string[],
    loadBalancerClass: get('load-balancer-class') as string,
    defaultLoadBalancer: get('default-load-balancer') as boolean,
    reassignOnPoolChange: get('reassign-on-pool-change') as boolean,
    concurrentServiceSyncs: get('concurrent-service-syncs') as number,
  };
  if (config.leaderElectRenewDeadlineMs >= config.leaderElectLeaseDurationMs) {
    throw new FlagError('--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration');
  }
  // The same checks as the elector's (client-go's, and room for the write fence's 2 s margin).
  if (config.leaderElectRenewDeadlineMs <= 1.2 * config.leaderElectRetryPeriodMs) {
    throw new FlagError('--leader-elect-renew-deadline must be more than 1.2 x --leader-elect-retry-period');
  }
  if (config.leaderElectLeaseDurationMs <= 2 * FENCE_MARGIN_MS) {
    throw new FlagError(
      `invalid value for flag --leader-elect-lease-duration: must be longer than ${(2 * FENCE_MARGIN_MS) / 1000}s`,
    );
  }
  checkMetricsServing(config);
  return { config, help };
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Unauthenticated metrics are served to this host only: plain HTTP on another address would let
 * anyone who reaches the Pod read them. Secure metrics speak HTTPS, which the probes do not.
 */
function checkMetricsServing(config: Config): void {
  let metrics, health;
  try {
    metrics = parseBindAddress(config.metricsBindAddress, 'metrics-bind-address');
    health = parseBindAddress(config.healthProbeBindAddress, 'health-probe-bind-address');
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
  if (!metrics) return;
  if (!config.metricsSecure && !LOOPBACK_HOSTS.has(metrics.host)) {
    throw new FlagError(
      `invalid value "${config.metricsBindAddress}" for flag --metrics-bind-address: with --metrics-secure=false ` +
        'metrics are served without authentication, so only on a loopback address (127.0.0.1:8080, [::1]:8080); ' +
        'keep --metrics-secure=true to serve them on other addresses',
    );
  }
  if (
    config.metricsSecure &&
    health &&
    metrics.host === health.host &&
    metrics.port === health.port &&
    metrics.port !== 0
  ) {
    throw new FlagError(
      '--metrics-bind-address and --health-probe-bind-address must differ with --metrics-secure: ' +
        'metrics are served over HTTPS with authentication, probes over plain HTTP',
    );
  }
}

export function usage(): string {
  const lines = ['Usage: service-controller-manager [flags]', '', 'Flags:'];
  for (const f of FLAGS) {
    const def = f.default === '' ? '' : ` (default ${f.default})`;
    lines.push(`  --${f.name}`.padEnd(40) + `${f.help}${def}`);
  }
  return lines.join('\n');
}

/**
 * Resolves `--controllers` against the known names: '*' enables every controller that is on by
 * default, 'name' enables one, '-name' disables one. Unknown names fail, naming the flag.
 */
export function selectControllers(
  requested: readonly string[],
  known: readonly { name: string; enabledByDefault: boolean }[],
): string[] {
  const names = new Set(known.map((k) => k.name));
  const enabled = new Set<string>();
  const disabled = new Set<string>();
  let star = false;
  for (const item of requested) {
    if (item === '*') star = true;
    else {
      const neg = item.startsWith('-');
      const name = neg ? item.slice(1) : item;
      if (!names.has(name)) {
        throw new FlagError(
          `invalid value "${item}" for flag --controllers: known controllers are ${[...names].join(', ')}`,
        );
      }
      (neg ? disabled : enabled).add(name);
    }
  }
  return known
    .filter((k) => !disabled.has(k.name) && (enabled.has(k.name) || (star && k.enabledByDefault)))
    .map((k) => k.name);
}
