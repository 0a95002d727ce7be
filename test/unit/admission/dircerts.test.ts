import { expect } from 'chai';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DirCertSource } from '../../../shared/admission/certs.ts';
import { type CertKeyPem, generateCA, issueServingCert } from '../../../shared/admission/pki.ts';
import { FakeClock } from '../../../shared/clock.ts';
import { type Logger, nopLogger } from '../../../shared/log.ts';

/** A logger that records error messages. */
class ErrorRecorder {
  readonly errors: string[] = [];
  readonly log: Logger = {
    ...nopLogger,
    child: () => this.log,
    error: (msg, err) => {
      this.errors.push(`${msg}: ${err instanceof Error ? err.message : String(err)}`);
    },
  };
}

/** Steps `clock` to the next poll and resolves once that poll is done (its next one is scheduled). */
async function nextPoll(clock: FakeClock, ms: number): Promise<void> {
  clock.step(ms);
  for (let i = 0; i < 10_000 && clock.pendingTimers() === 0; i++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (clock.pendingTimers() === 0) throw new Error('the poll did not finish');
}

describe('DirCertSource', () => {
  const now = Date.now();
  const validity = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 3600_000) };
  let dir: string;
  let first: CertKeyPem;
  let second: CertKeyPem;
  let stop: AbortController;

  before(async () => {
    const ca = await generateCA({ commonName: 'dir-test-ca', ...validity });
    first = await issueServingCert(ca, { commonName: 'a', hosts: ['127.0.0.1'], ...validity });
    second = await issueServingCert(ca, { commonName: 'b', hosts: ['127.0.0.1'], ...validity });
  });

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'scm-dircerts-'));
    stop = new AbortController();
  });

  afterEach(async () => {
    stop.abort();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function write(pair: CertKeyPem): Promise<void> {
    await fs.writeFile(path.join(dir, 'tls.crt'), pair.certPem);
    await fs.writeFile(path.join(dir, 'tls.key'), pair.keyPem);
  }

  it('start fails naming the folder and both files when they are missing', async () => {
    const source = new DirCertSource({ dir, clock: new FakeClock(), log: nopLogger });
    let message = '';
    await source.start(stop.signal).catch((err: Error) => (message = err.message));
    expect(message).to.match(
      new RegExp(`^webhook certificate folder ${dir}: cannot use tls.crt and tls.key: ENOENT`),
    );
  });

  it('start fails when the key is not the certificate’s', async () => {
    await write({ certPem: first.certPem, keyPem: second.keyPem });
    const source = new DirCertSource({ dir, clock: new FakeClock(), log: nopLogger });
    let message = '';
    await source.start(stop.signal).catch((err: Error) => (message = err.message));
    expect(message).to.equal(
      `webhook certificate folder ${dir}: cannot use tls.crt and tls.key: ` +
        'tls.key is not the private key of the certificate in tls.crt',
    );
  });

  it('serves the pair in the folder once started', async () => {
    await write(first);
    const source = new DirCertSource({ dir, clock: new FakeClock(), log: nopLogger });
    expect(() => source.current()).to.throw('no webhook certificate yet');
    await source.start(stop.signal);
    expect(source.current()).to.deep.equal(first);
  });

  it('picks up a new pair at the next poll and tells its listeners', async () => {
    await write(first);
    const clock = new FakeClock();
    const source = new DirCertSource({ dir, clock, log: nopLogger, pollIntervalMs: 10_000 });
    await source.start(stop.signal);
    let changes = 0;
    source.onChange(() => changes++);
    await write(second);
    await nextPoll(clock, 9_999);
    expect(changes).to.equal(0);
    await nextPoll(clock, 1);
    expect(source.current()).to.deep.equal(second);
    expect(changes).to.equal(1);
  });

  it('keeps the previous pair and logs once when the folder holds a bad pair, then recovers', async () => {
    await write(first);
    const clock = new FakeClock();
    const recorder = new ErrorRecorder();
    const source = new DirCertSource({ dir, clock, log: recorder.log, pollIntervalMs: 1000 });
    await source.start(stop.signal);
    let changes = 0;
    source.onChange(() => changes++);

    await write({ certPem: second.certPem, keyPem: first.keyPem });
    await nextPoll(clock, 1000);
    expect(source.current()).to.deep.equal(first);
    expect(recorder.errors).to.deep.equal([
      'cannot reload the webhook certificate; still serving the previous one: ' +
        'tls.key is not the private key of the certificate in tls.crt',
    ]);

    await nextPoll(clock, 1000); // the same bad pair: not logged again
    expect(recorder.errors).to.have.length(1);
    expect(changes).to.equal(0);

    await write(second);
    await nextPoll(clock, 1000);
    expect(source.current()).to.deep.equal(second);
    expect(changes).to.equal(1);
    expect(recorder.errors).to.have.length(1);
  });

  it('stops polling when its signal aborts', async () => {
    await write(first);
    const clock = new FakeClock();
    const source = new DirCertSource({ dir, clock, log: nopLogger });
    await source.start(stop.signal);
    expect(clock.pendingTimers()).to.equal(1);
    stop.abort();
    expect(clock.pendingTimers()).to.equal(0);
  });
});
