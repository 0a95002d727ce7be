/**
 * Converts MetalLB configuration to LoadBalancerIPPools (docs/MIGRATING-FROM-METALLB.md):
 *
 *   kubectl get ipaddresspools.metallb.io -A -o yaml | node hack/metallb-to-pools.ts > pools.yaml
 *   node hack/metallb-to-pools.ts < metallb.yaml > pools.yaml
 *
 * Reads YAML (one or more documents, `List`s too) on stdin, writes the pools as YAML on stdout and
 * what it changed, left out or skipped on stderr. Exits 1, with the reason on stderr and nothing on
 * stdout, when the input is not YAML, not Kubernetes objects, or holds no IPAddressPool.
 */
import { dump, loadAll, YAMLException } from 'js-yaml';
import { convertMetalLB, InputError, type Note } from './metallb/convert.ts';

export interface Result {
  stdout: string;
  stderr: string;
  code: number;
}

const formatNote = (n: Note): string =>
  `${n.severity === 'warning' ? 'warning' : 'note'}: ${n.object ? `${n.object}: ` : ''}${n.message}\n`;

/** The whole command on a string: what it writes and its exit code. */
export function run(input: string): Result {
  let documents: unknown[];
  try {
    documents = loadAll(input);
  } catch (err) {
    if (!(err instanceof YAMLException)) throw err;
    return { stdout: '', stderr: `error: the input is not YAML: ${err.message.split('\n')[0]}\n`, code: 1 };
  }
  try {
    const { pools, notes } = convertMetalLB(documents);
    const stderr = notes.map(formatNote).join('');
    if (pools.length === 0) {
      return { stdout: '', stderr: `${stderr}error: the input holds no MetalLB IPAddressPool\n`, code: 1 };
    }
    return { stdout: pools.map((p) => dump(p, { lineWidth: -1 })).join('---\n'), stderr, code: 0 };
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    return { stdout: '', stderr: `error: ${err.message}\n`, code: 1 };
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

if (import.meta.main) {
  const result = run(await readStdin());
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exitCode = result.code;
}
