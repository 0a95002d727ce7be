/**
 * A TCP proxy in front of the API server that can cut every connection through it at once, as a
 * load balancer's idle timeout or a network blip does: streams end with a reset, not a clean
 * close. TLS passes through untouched (the API server's certificate holds 127.0.0.1, so clients
 * verify it as usual). `cutAll()` counts what it cut.
 */
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export interface CutProxy {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** `kubeConfig` with its cluster's server pointing at the proxy. */
  kubeConfigThrough(kubeConfig: KubeConfig): KubeConfig;
  /** Destroys every open connection; returns how many. */
  cutAll(): number;
  /** Connections cut so far. */
  readonly cuts: number;
  close(): Promise<void>;
}

/**
 * `target` one URL, or several: each new connection then goes to the next one in turn (a
 * Service's load balancing across replicas).
 */
export async function startCutProxy(target: string | readonly string[]): Promise<CutProxy> {
  const targets = (typeof target === 'string' ? [target] : target).map((t) => new URL(t));
  let next = 0;
  const open = new Set<net.Socket>();
  let cuts = 0;
  const server = net.createServer((client) => {
    const { hostname, port } = targets[next++ % targets.length];
    const upstream = net.connect(Number(port), hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      open.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        open.delete(a);
        b.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  const url = `https://127.0.0.1:${address.port}`;
  return {
    url,
    kubeConfigThrough: (kubeConfig) => {
      const copy = new KubeConfig();
      copy.loadFromString(kubeConfig.exportConfig());
      const cluster = copy.getCurrentCluster();
      if (!cluster) throw new Error('the kubeconfig has no current cluster');
      copy.clusters = copy.clusters.map((c) => (c.name === cluster.name ? { ...c, server: url } : c));
      return copy;
    },
    cutAll: () => {
      // Each connection is two sockets; count connections.
      const n = Math.ceil(open.size / 2);
      for (const s of [...open]) s.resetAndDestroy();
      cuts += n;
      return n;
    },
    get cuts() {
      return cuts;
    },
    close: async () => {
      for (const s of [...open]) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
