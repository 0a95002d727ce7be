// The local control plane for integration tests, the envtest way: a real etcd and a real
// kube-apiserver on free loopback ports, with their own PKI, an admin kubeconfig and a temp folder.
// No controller-manager runs: no garbage collector, no namespace controller (deleted namespaces
// stay Terminating), no default ServiceAccount in new namespaces.
//
// Process hygiene: every child is SIGKILLed and every temp folder removed when this Node process
// exits, also after a failed test. The children run in their own process group, so a Ctrl-C on
// the terminal reaches only this process, which decides the order: unless `handleSignals: false`
// (then the caller owns the signals, as `make run` does), while a control plane runs SIGINT/SIGTERM
// stop it and then exit with 130/143 (those handlers are removed when the last one stops).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { findAssets } from './assets.ts';
import type { Assets } from './assets.ts';
import { createCerts, firstServiceIps } from './certs.ts';
import type { ControlPlaneCerts } from './certs.ts';

export interface ControlPlaneOptions {
  /** kube-apiserver's --service-cluster-ip-range; default '10.0.0.0/16'. May be dual-stack ("a/b,c/d"). */
  serviceClusterIpRange?: string;
  /**
   * More kube-apiserver flags, `--name=value` or `--name`. A flag the harness sets too replaces the
   * harness's value (so list-valued flags such as --disable-admission-plugins do not accumulate).
   */
  extraApiServerArgs?: string[];
  /** Copy etcd's and kube-apiserver's output to stderr; default: the SCM_ENVTEST_LOG=1 env var. */
  log?: boolean;
  /** How long to wait for kube-apiserver's /readyz (each start); default 60 s. */
  startTimeoutMs?: number;
  /** Binaries to run; default findAssets(). */
  assets?: Assets;
  /** Stop on SIGINT/SIGTERM and exit (default true); false when the caller owns the signals. */
  handleSignals?: boolean;
  /**
   * Record every write request (create, update, patch, delete: user, verb, object, timestamps,
   * response code) in kube-apiserver's audit log (`auditLogPath`, read with `auditEvents()`).
   */
  auditWrites?: boolean;
  /**
   * An audit policy of the caller's (audit.k8s.io/v1 Policy YAML) instead of `auditWrites`'s, e.g.
   * every request of one user, reads and refusals included.
   */
  auditPolicy?: string;
}

/** One line of kube-apiserver's audit log (audit.k8s.io/v1 Event), the fields we read. */
export interface AuditEvent {
  stage: string;
  verb: string;
  user: { username: string; groups?: string[] };
  objectRef?: {
    apiGroup?: string;
    resource?: string;
    namespace?: string;
    name?: string;
    subresource?: string;
  };
  /** The path and query, e.g. `/metrics` for a non-resource request. */
  requestURI?: string;
  userAgent?: string;
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

/** Audit policy: every write at Metadata level, once its response is complete; nothing else. */
const WRITE_AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
`;

export interface ControlPlane {
  /** Admin (system:masters) kubeconfig file, context 'envtest'. */
  readonly kubeconfigPath: string;
  /** A KubeConfig loaded from kubeconfigPath. */
  readonly kubeConfig: KubeConfig;
  /** https://127.0.0.1:PORT; the same across stopApiServer/startApiServer. */
  readonly apiServerUrl: string;
  /** http://127.0.0.1:PORT */
  readonly etcdUrl: string;
  /** The temp folder holding the PKI, etcd's data, the logs and the kubeconfig; removed by stop(). */
  readonly dir: string;
  readonly serviceClusterIpRange: string;
  readonly certs: ControlPlaneCerts;
  /** Pid of the running etcd, undefined once stopped. */
  readonly etcdPid: number | undefined;
  /** Pid of the running kube-apiserver, undefined while it is stopped. */
  readonly apiServerPid: number | undefined;
  /** The audit log file, with `auditWrites`; undefined without. */
  readonly auditLogPath: string | undefined;
  /** The audit log's events so far (complete lines), in the order they were logged. */
  auditEvents(): AuditEvent[];
  /**
   * Writes a kubeconfig for a user of its own (a client certificate for `user` in `groups`,
   * default `system:masters`) and returns its path: a distinct client identity, e.g. one per
   * manager process, that the audit log and the API server's metrics tell apart.
   */
  userKubeconfig(user: string, groups?: readonly string[]): Promise<string>;
  /** Stops kube-apiserver then etcd (SIGTERM, SIGKILL after 10 s) and removes dir. Idempotent. */
  stop(): Promise<void>;
  /** Stops only kube-apiserver; etcd and its data stay. No-op when it is not running. */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again on the same port with the same etcd; waits for /readyz. No-op when running. */
  startApiServer(): Promise<void>;
  /**
   * Starts one more kube-apiserver on another free port against the same etcd (HA API servers share
   * etcd), with the same flags, PKI and admin credentials; waits for /readyz. It runs independently
   * of stopApiServer/startApiServer; stop() of the plane stops it too.
   */
  startExtraApiServer(): Promise<ExtraApiServer>;
}

export interface ExtraApiServer {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** An admin KubeConfig (context 'envtest') pointing at this API server. */
  readonly kubeConfig: KubeConfig;
  /** SIGTERM, SIGKILL after 10 s; idempotent. */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 10_000;
const ETCD_START_TIMEOUT_MS = 30_000;
const DEFAULT_START_TIMEOUT_MS = 60_000;
const PORT_RETRIES = 3;

// ---------------------------------------------------------------------------------------------
// Module-level registry: live children, temp folders, running control planes.

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
const runningPlanes = new Set<LocalControlPlane>();
let exitHookInstalled = false;
let signalHooksInstalled = false;
let signalled = false;

function killAllSync(): void {
  for (const child of liveChildren) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  liveChildren.clear();
  for (const dir of liveDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort at exit
    }
  }
  liveDirs.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  const code = signal === 'SIGINT' ? 130 : 143;
  if (signalled) {
    // A second signal while stopping: don't wait any longer.
    killAllSync();
    process.exit(code);
  }
  signalled = true;
  void Promise.allSettled([...runningPlanes].map((p) => p.stop())).finally(() => process.exit(code));
}

function ensureExitHook(): void {
  if (!exitHookInstalled) {
    // Stays installed: it does nothing once the registry is empty.
    process.on('exit', killAllSync);
    exitHookInstalled = true;
  }
}

function registerPlane(plane: LocalControlPlane, handleSignals: boolean): void {
  ensureExitHook();
  runningPlanes.add(plane);
  if (handleSignals && !signalHooksInstalled) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    signalHooksInstalled = true;
  }
}

function unregisterPlane(plane: LocalControlPlane): void {
  runningPlanes.delete(plane);
  if (runningPlanes.size === 0 && signalHooksInstalled) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    signalHooksInstalled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/** Free loopback TCP ports: listens on 127.0.0.1:0 (all at once, so they differ), reads, closes. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const addr = server.address();
      if (addr === null || typeof addr === 'string') throw new Error('could not read a free port');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

function tail(file: string, fromOffset: number, lines = 40): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.max(fromOffset, size - 64 * 1024);
      const buf = Buffer.alloc(Math.max(0, size - start));
      fs.readSync(fd, buf, 0, buf.length, start);
      const text = buf.toString('utf8').trimEnd();
      return text === '' ? '(no output)' : text.split('\n').slice(-lines).join('\n');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '(no log)';
  }
}

interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** One run of one binary, its output appended to a log file. */
class Proc {
  readonly name: string;
  readonly logFile: string;
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  readonly logOffset: number;
  exit: ExitInfo | undefined;

  constructor(name: string, bin: string, args: string[], logFile: string, echo: boolean) {
    this.name = name;
    this.logFile = logFile;
    const fd = fs.openSync(logFile, 'a', 0o600);
    this.logOffset = fs.fstatSync(fd).size;
    fs.writeSync(fd, `\n==> ${new Date().toISOString()} ${bin} ${args.join(' ')}\n`);
    let child: ChildProcess;
    try {
      child = spawn(bin, args, {
        stdio: echo ? ['ignore', 'pipe', 'pipe'] : ['ignore', fd, fd],
        env: process.env,
        // Its own process group: a terminal's Ctrl-C must not kill it under a draining manager.
        detached: true,
      });
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    this.child = child;
    ensureExitHook();
    liveChildren.add(child);
    let fdOpen = true;
    const closeFd = (): void => {
      if (fdOpen) {
        fdOpen = false;
        fs.closeSync(fd);
      }
    };
    if (echo) {
      const prefix = `[${name}] `;
      const onData = (chunk: Buffer): void => {
        if (fdOpen) fs.writeSync(fd, chunk);
        const text = chunk.toString('utf8').replace(/\n(?!$)/g, `\n${prefix}`);
        process.stderr.write(prefix + text);
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
    }
    this.exited = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo): void => {
        if (this.exit) return;
        this.exit = info;
        liveChildren.delete(child);
        resolve(info);
      };
      child.once('exit', (code, signal) => done({ code, signal }));
      child.once('error', (error) => {
        // spawn failures (ENOENT, EACCES) emit 'error' and no 'exit'
        if (child.pid === undefined) done({ code: null, signal: null, error });
      });
      child.once('close', closeFd);
      if (!echo) closeFd(); // the child holds its own copy of the fd
    });
  }

  get pid(): number | undefined {
    return this.exit ? undefined : this.child.pid;
  }

  describeExit(): string {
    const e = this.exit;
    if (!e) return `${this.name} is running`;
    if (e.error) return `${this.name} could not start: ${e.error.message}`;
    return `${this.name} exited (${e.signal ? `signal ${e.signal}` : `code ${String(e.code)}`})`;
  }

  logTail(): string {
    return tail(this.logFile, this.logOffset);
  }

  /** SIGTERM, SIGKILL after graceMs, and wait for the exit. */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    if (this.exit) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!this.exit) this.child.kill('SIGKILL');
    }, graceMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

class StartError extends Error {
  readonly addressInUse: boolean;
  constructor(message: string, addressInUse: boolean) {
    super(message);
    this.name = 'StartError';
    this.addressInUse = addressInUse;
  }
}

/** Polls `check` until it returns true, the process exits, or the deadline passes. */
async function waitUntil(
  proc: Proc,
  what: string,
  timeoutMs: number,
  check: () => Promise<{ ok: boolean; detail: string }>,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last: string;
  for (;;) {
    if (proc.exit) {
      const log = proc.logTail();
      throw new StartError(
        `${proc.describeExit()} before ${what}; last lines of its output:\n${log}`,
        /address already in use/i.test(log),
      );
    }
    try {
      const r = await check();
      if (r.ok) return;
      last = r.detail;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (performance.now() >= deadline) {
      throw new StartError(
        `${proc.name} not ${what} after ${timeoutMs} ms (last check: ${last}); last lines of its output:\n${proc.logTail()}`,
        false,
      );
    }
    await sleep(100);
  }
}

async function etcdHealthy(url: string): Promise<{ ok: boolean; detail: string }> {
  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
  const body = await res.text();
  let healthy = false;
  try {
    healthy = (JSON.parse(body) as { health?: unknown }).health === 'true';
  } catch {
    // not JSON yet
  }
  return { ok: res.ok && healthy, detail: `${res.status} ${body.trim()}` };
}

function httpsGet(
  url: string,
  tls: { ca: string; cert: string; key: string },
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...tls, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

function mergeArgs(defaults: string[], extra: string[]): string[] {
  const flagName = (arg: string): string => arg.replace(/^--?/, '').split('=', 1)[0];
  const overridden = new Set(extra.filter((a) => a.startsWith('-')).map(flagName));
  return [...defaults.filter((a) => !overridden.has(flagName(a))), ...extra];
}

function writeKubeconfig(
  file: string,
  server: string,
  certs: ControlPlaneCerts,
  client: { certPem: string; keyPem: string; user: string } = {
    certPem: certs.adminCertPem,
    keyPem: certs.adminKeyPem,
    user: 'envtest-admin',
  },
): void {
  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
  // JSON is YAML: client-node, kubectl and client-go all read it.
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'envtest', cluster: { server, 'certificate-authority-data': b64(certs.caCertPem) } }],
    users: [
      {
        name: client.user,
        user: {
          'client-certificate-data': b64(client.certPem),
          'client-key-data': b64(client.keyPem),
        },
      },
    ],
    contexts: [{ name: 'envtest', context: { cluster: 'envtest', user: client.user, namespace: 'default' } }],
    'current-context': 'envtest',
    preferences: {},
  };
  fs.writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

// ---------------------------------------------------------------------------------------------
// The control plane.

class LocalControlPlane implements ControlPlane {
  readonly dir: string;
  readonly serviceClusterIpRange: string;
  readonly certs: ControlPlaneCerts;
  kubeconfigPath = '';
  kubeConfig = new KubeConfig();
  apiServerUrl = '';
  etcdUrl = '';

  private readonly assets: Assets;
  private readonly echo: boolean;
  private readonly startTimeoutMs: number;
  private readonly extraApiServerArgs: string[];
  readonly auditLogPath: string | undefined;
  private etcd: Proc | undefined;
  private apiServer: Proc | undefined;
  private apiServerPort = 0;
  private readonly extraApiServers = new Set<Proc>();
  private extraCount = 0;
  private stopping: Promise<void> | undefined;
  private apiOp: Promise<void> = Promise.resolve();

  constructor(
    dir: string,
    certs: ControlPlaneCerts,
    opts: Required<Omit<ControlPlaneOptions, 'log' | 'handleSignals' | 'auditWrites' | 'auditPolicy'>> & {
      log: boolean;
      auditWrites: boolean;
      auditPolicy: string | undefined;
    },
  ) {
    this.dir = dir;
    this.certs = certs;
    this.serviceClusterIpRange = opts.serviceClusterIpRange;
    this.assets = opts.assets;
    this.echo = opts.log;
    this.startTimeoutMs = opts.startTimeoutMs;
    this.extraApiServerArgs = opts.extraApiServerArgs;
    const policy = opts.auditPolicy ?? (opts.auditWrites ? WRITE_AUDIT_POLICY : undefined);
    this.auditLogPath = policy ? path.join(dir, 'audit.log') : undefined;
    if (policy) fs.writeFileSync(path.join(dir, 'audit-policy.yaml'), policy);
  }

  auditEvents(): AuditEvent[] {
    if (!this.auditLogPath || !fs.existsSync(this.auditLogPath)) return [];
    const text = fs.readFileSync(this.auditLogPath, 'utf8');
    // The last line may be half written.
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    return complete
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as AuditEvent);
  }

  async userKubeconfig(user: string, groups: readonly string[] = ['system:masters']): Promise<string> {
    const client = await this.certs.issueClientCert(user, groups);
    const file = path.join(this.dir, `${user.replace(/[^a-zA-Z0-9_.-]/g, '_')}.kubeconfig`);
    writeKubeconfig(file, this.apiServerUrl, this.certs, { ...client, user });
    return file;
  }

  get etcdPid(): number | undefined {
    return this.etcd?.pid;
  }

  get apiServerPid(): number | undefined {
    return this.apiServer?.pid;
  }

  private checkNotStopped(): void {
    if (this.stopping) throw new Error(`the control plane in ${this.dir} has been stopped`);
  }

  async startEtcd(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const [clientPort, peerPort] = await freePorts(2);
      const url = `http://127.0.0.1:${clientPort}`;
      const peer = `http://127.0.0.1:${peerPort}`;
      this.checkNotStopped();
      const proc = new Proc(
        'etcd',
        this.assets.etcd,
        [
          '--name=envtest',
          `--data-dir=${path.join(this.dir, 'etcd-data')}`,
          `--listen-client-urls=${url}`,
          `--advertise-client-urls=${url}`,
          `--listen-peer-urls=${peer}`,
          `--initial-advertise-peer-urls=${peer}`,
          `--initial-cluster=envtest=${peer}`,
          '--unsafe-no-fsync=true',
          `--quota-backend-bytes=${8 * 1024 * 1024 * 1024}`,
          '--log-level=warn',
        ],
        path.join(this.dir, 'etcd.log'),
        this.echo,
      );
      this.etcd = proc;
      try {
        await waitUntil(proc, 'healthy', ETCD_START_TIMEOUT_MS, () => etcdHealthy(url));
        this.etcdUrl = url;
        return;
      } catch (err) {
        await proc.stop();
        if (err instanceof StartError && err.addressInUse && attempt < PORT_RETRIES) {
          fs.rmSync(path.join(this.dir, 'etcd-data'), { recursive: true, force: true });
          continue;
        }
        throw err;
      }
    }
  }

  private apiServerArgs(port: number): string[] {
    const f = this.certs.files;
    const defaults = [
      `--etcd-servers=${this.etcdUrl}`,
      `--secure-port=${port}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      // Endpoints may not hold loopback addresses, so the lease reconciler would fail every 10 s
      // writing 127.0.0.1 into default/kubernetes; with 'none' that object simply does not exist.
      // For realistic apiserver-managed endpoints pass
      // ['--advertise-address=192.0.2.1', '--endpoint-reconciler-type=lease'] (TEST-NET-1, never dialled).
      '--endpoint-reconciler-type=none',
      `--tls-cert-file=${f.servingCert}`,
      `--tls-private-key-file=${f.servingKey}`,
      `--client-ca-file=${f.caCert}`,
      `--service-account-key-file=${f.serviceAccountPublicKey}`,
      `--service-account-signing-key-file=${f.serviceAccountKey}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-cluster-ip-range=${this.serviceClusterIpRange}`,
      '--authorization-mode=RBAC',
      '--disable-admission-plugins=ServiceAccount',
      '--allow-privileged=true',
      `--cert-dir=${path.join(this.dir, 'apiserver-certs')}`,
      ...(this.auditLogPath
        ? [
            `--audit-policy-file=${path.join(this.dir, 'audit-policy.yaml')}`,
            `--audit-log-path=${this.auditLogPath}`,
            '--audit-log-format=json',
            '--audit-log-mode=blocking',
          ]
        : []),
    ];
    return mergeArgs(defaults, this.extraApiServerArgs);
  }

  /** Spawns kube-apiserver on `port`, hands the Proc to `track` (so stop() can reach it), waits for /readyz. */
  private async runApiServer(
    timeoutMs: number,
    port = this.apiServerPort,
    name = 'kube-apiserver',
    track: (proc: Proc) => void = (proc) => (this.apiServer = proc),
  ): Promise<Proc> {
    this.checkNotStopped();
    const proc = new Proc(
      name,
      this.assets.kubeApiServer,
      this.apiServerArgs(port),
      path.join(this.dir, `${name}.log`),
      this.echo,
    );
    track(proc);
    const tls = { ca: this.certs.caCertPem, cert: this.certs.adminCertPem, key: this.certs.adminKeyPem };
    const url = `https://127.0.0.1:${port}/readyz`;
    try {
      await waitUntil(proc, 'ready (/readyz)', timeoutMs, async () => {
        const r = await httpsGet(url, tls, 5000);
        return {
          ok: r.status === 200,
          detail: `${r.status} ${r.body.trim().split('\n').slice(-5).join(' | ')}`,
        };
      });
    } catch (err) {
      await proc.stop();
      throw err;
    }
    return proc;
  }

  async startFirstApiServer(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      [this.apiServerPort] = await freePorts(1);
      try {
        await this.runApiServer(this.startTimeoutMs);
        break;
      } catch (err) {
        if (err instanceof StartError && err.addressInUse && attempt < PORT_RETRIES) continue;
        throw err;
      }
    }
    this.apiServerUrl = `https://127.0.0.1:${this.apiServerPort}`;
    this.kubeconfigPath = path.join(this.dir, 'kubeconfig');
    writeKubeconfig(this.kubeconfigPath, this.apiServerUrl, this.certs);
    this.kubeConfig.loadFromFile(this.kubeconfigPath);
  }

  private serialize(op: () => Promise<void>): Promise<void> {
    const next = this.apiOp.then(op, op);
    this.apiOp = next.catch(() => undefined);
    return next;
  }

  stopApiServer(): Promise<void> {
    return this.serialize(async () => {
      const proc = this.apiServer;
      this.apiServer = undefined;
      if (proc) await proc.stop();
    });
  }

  startApiServer(): Promise<void> {
    return this.serialize(async () => {
      this.checkNotStopped();
      if (this.apiServer && !this.apiServer.exit) return;
      await this.runApiServer(this.startTimeoutMs);
    });
  }

  async startExtraApiServer(): Promise<ExtraApiServer> {
    const name = `kube-apiserver-extra-${++this.extraCount}`;
    for (let attempt = 1; ; attempt++) {
      const [port] = await freePorts(1);
      let proc: Proc;
      try {
        proc = await this.runApiServer(this.startTimeoutMs, port, name, (p) => this.extraApiServers.add(p));
      } catch (err) {
        if (err instanceof StartError && err.addressInUse && attempt < PORT_RETRIES) continue;
        throw err;
      }
      const url = `https://127.0.0.1:${port}`;
      const kubeconfigPath = path.join(this.dir, `${name}.kubeconfig`);
      writeKubeconfig(kubeconfigPath, url, this.certs);
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromFile(kubeconfigPath);
      return {
        url,
        kubeConfig,
        stop: async () => {
          await proc.stop();
          this.extraApiServers.delete(proc);
        },
      };
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        const extras = [...this.extraApiServers];
        this.extraApiServers.clear();
        await Promise.all(extras.map((p) => p.stop()));
        const api = this.apiServer;
        this.apiServer = undefined;
        if (api) await api.stop();
        const etcd = this.etcd;
        this.etcd = undefined;
        if (etcd) await etcd.stop();
        await fs.promises.rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
        liveDirs.delete(this.dir);
      } finally {
        unregisterPlane(this);
      }
    })();
    return this.stopping;
  }
}

/**
 * Starts etcd and kube-apiserver on free loopback ports and waits for /readyz. Always `await
 * cp.stop()` (e.g. in an after hook); on failure everything started so far is stopped and removed.
 */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const assets = opts.assets ?? findAssets();
  const serviceClusterIpRange = opts.serviceClusterIpRange ?? '10.0.0.0/16';
  ensureExitHook();
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'scm-envtest-'));
  liveDirs.add(dir);
  let plane: LocalControlPlane | undefined;
  try {
    const certs = await createCerts(path.join(dir, 'pki'), {
      serviceIps: firstServiceIps(serviceClusterIpRange),
    });
    plane = new LocalControlPlane(dir, certs, {
      serviceClusterIpRange,
      extraApiServerArgs: opts.extraApiServerArgs ?? [],
      log: opts.log ?? process.env.SCM_ENVTEST_LOG === '1',
      startTimeoutMs: opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
      assets,
      auditWrites: opts.auditWrites ?? false,
      auditPolicy: opts.auditPolicy,
    });
    registerPlane(plane, opts.handleSignals ?? true);
    await plane.startEtcd();
    await plane.startFirstApiServer();
    return plane;
  } catch (err) {
    if (plane) {
      await plane.stop();
    } else {
      await fs.promises.rm(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
    }
    throw err;
  }
}
