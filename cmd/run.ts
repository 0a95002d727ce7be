/**
 * `make run`: runs the manager against the configured cluster; when none is configured (no
 * --kubeconfig, no KUBECONFIG, no in-cluster credentials, no ~/.kube/config) it first starts a
 * local control plane (etcd + kube-apiserver, as the integration tests do), prints how to point
 * kubectl at it, and stops it again when the manager stops.
 *
 * With the local control plane this process is the one owner of SIGINT/SIGTERM: the first one
 * stops the manager (it finishes its in-flight syncs), then the control plane, then exits 0 (or
 * with the manager's code); a second one stops everything at once and exits 130. The control
 * plane's processes run in their own process group, so a terminal's Ctrl-C does not reach them.
 * `make` itself reports a Ctrl-C as an interrupt whatever this process does: run
 * `node cmd/run.ts` (with the project's node first on PATH) to see the exit code.
 */
import { main } from './manager.ts';
import { configuredSource } from '../shared/kube/config.ts';
import {
  allocationFlags,
  createSamplePool,
  ensureOurNamespace,
  freePorts,
  installCRDs,
  registerServiceWebhook,
  startControlPlane,
} from '../shared/localcontrolplane/index.ts';

function flagValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  return argv[i].includes('=') ? argv[i].slice(argv[i].indexOf('=') + 1) : argv[i + 1];
}

async function run(argv: string[]): Promise<number> {
  const flags = {
    kubeconfig: flagValue(argv, 'kubeconfig'),
    master: flagValue(argv, 'master'),
    serviceAccountDir: flagValue(argv, 'service-account-dir'),
  };
  if (configuredSource(flags)) {
    return main({ argv });
  }
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      // The exit hook of the control plane SIGKILLs its processes and removes its folder.
      process.stderr.write(`\n${signal} again: stopping everything at once.\n`);
      process.exit(130);
    }
    process.stderr.write(
      `\n${signal}: stopping the manager, then the local control plane (again to force)...\n`,
    );
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  process.stderr.write('No cluster configured: starting a local control plane (etcd + kube-apiserver)...\n');
  const cp = await startControlPlane({ handleSignals: false });
  try {
    if (stop.signal.aborted) return 0;
    // Services get their ClusterIPs and NodePorts from our maps, through our webhook, as in a
    // cluster with manifests/ applied: the CRDs, our namespace, the webhook reached by URL; and
    // LoadBalancer Services an address from the sample pool.
    const [webhookPort] = await freePorts(1);
    await installCRDs(cp.kubeConfig);
    await ensureOurNamespace(cp.kubeConfig);
    await registerServiceWebhook(cp.kubeConfig, { baseUrl: `https://127.0.0.1:${webhookPort}` });
    const pool = await createSamplePool(cp.kubeConfig);
    process.stderr.write(
      [
        '',
        `Local control plane ready at ${cp.apiServerUrl}. In another terminal:`,
        `  export KUBECONFIG=${cp.kubeconfigPath}`,
        '  kubectl get endpoints,endpointslices -A -w        (no kubectl? `make kubectl` builds one)',
        '  kubectl create service nodeport web --tcp=80:8080 && kubectl get rangeallocations',
        `  kubectl create service loadbalancer lb --tcp=80:8080 && kubectl get service/lb lbpool/${pool}`,
        'Ctrl-C stops the manager and the control plane.',
        '',
      ].join('\n'),
    );
    return await main({
      argv: [
        '--kubeconfig',
        cp.kubeconfigPath,
        '--leader-elect=false',
        // A laptop's own control plane: plain metrics on this host (curl needs no token).
        '--metrics-bind-address=127.0.0.1:8080',
        '--metrics-secure=false',
        ...allocationFlags(`127.0.0.1:${webhookPort}`),
        '--controllers=*,clusterip,nodeport,loadbalancer',
        ...argv,
      ],
      signal: stop.signal,
    });
  } finally {
    process.stderr.write('Stopping the local control plane...\n');
    await cp.stop();
    process.stderr.write('Local control plane stopped.\n');
  }
}

process.exit(await run(process.argv.slice(2)));
