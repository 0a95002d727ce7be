/**
 * `make run`: runs the manager against the configured cluster; when none is configured (no
 * --kubeconfig, no KUBECONFIG, no in-cluster credentials, no ~/.kube/config) it first starts a
 * local control plane (etcd + kube-apiserver, as the integration tests do), prints how to point
 * kubectl at it, and stops it again when the manager stops.
 */
import { main } from './manager.ts';
import { configuredSource } from '../shared/kube/config.ts';
import { startControlPlane } from '../shared/localcontrolplane/index.ts';

async function run(argv: string[]): Promise<number> {
  const flagValue = (name: string): string | undefined => {
    const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    if (i < 0) return undefined;
    return argv[i].includes('=') ? argv[i].slice(argv[i].indexOf('=') + 1) : argv[i + 1];
  };
  if (configuredSource({ kubeconfig: flagValue('kubeconfig'), master: flagValue('master') })) {
    return main({ argv });
  }
  process.stderr.write('No cluster configured: starting a local control plane (etcd + kube-apiserver)...\n');
  const cp = await startControlPlane();
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  process.stderr.write(
    [
      '',
      `Local control plane ready at ${cp.apiServerUrl}. In another terminal:`,
      `  export KUBECONFIG=${cp.kubeconfigPath}`,
      '  kubectl get endpoints,endpointslices -A -w        (no kubectl? `make kubectl` builds one)',
      'Ctrl-C stops the manager and the control plane.',
      '',
    ].join('\n'),
  );
  try {
    return await main({
      argv: ['--kubeconfig', cp.kubeconfigPath, '--leader-elect=false', ...argv],
      signal: stop.signal,
    });
  } finally {
    await cp.stop();
  }
}

process.exit(await run(process.argv.slice(2)));
