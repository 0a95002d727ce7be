// A fresh namespace per test: the server picks a unique name from the prefix (generateName).
// The local control plane runs no namespace controller, so a deleted namespace stays Terminating;
// tests just leave theirs behind (the control plane's etcd goes away with it).
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';

/** Lower-case DNS-1123 label material, at most 40 characters, never empty. */
function labelPrefix(prefix: string): string {
  const cleaned = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return cleaned === '' ? 'test' : cleaned;
}

/** Creates a namespace named `<prefix>-<random>` and returns its name. */
export async function createNamespace(kc: KubeConfig, prefix: string): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await core.createNamespace({ body: { metadata: { generateName: `${labelPrefix(prefix)}-` } } });
  const name = ns.metadata?.name;
  if (!name) throw new Error(`the API server returned a namespace without a name for prefix ${prefix}`);
  return name;
}
