import { expect } from 'chai';
import { RangeAllocator } from '../../../shared/allocator/allocator.ts';
import { IPRange, PortRange, type ValueRange } from '../../../shared/allocator/ranges.ts';
import {
  type Claim,
  LeakTracker,
  PASSES_BEFORE_LEAK_RELEASE,
  rebuild,
  type RebuildResult,
} from '../../../shared/allocator/repair.ts';

const RANGE = new IPRange('10.0.0.0/24');

function ipClaim(name: string, text: string, extra: Partial<Claim<string>> = {}): Claim<string> {
  return { owner: { namespace: 'default', name }, field: 'spec.clusterIPs[0]', text, value: text, ...extra };
}

function portClaim(name: string, port: number): Claim<number> {
  return {
    owner: { namespace: 'default', name },
    field: 'spec.ports[0].nodePort',
    text: String(port),
    value: port,
  };
}

function allocatorWith<V>(range: ValueRange<V>, values: readonly V[]): RangeAllocator<V> {
  const allocator = new RangeAllocator(range);
  for (const v of values) allocator.allocate(v);
  return allocator;
}

/** The findings as [service name, problem] pairs, in order. */
function problems<V>(result: RebuildResult<V>): [string, string][] {
  return result.findings.map((f) => [f.claim.owner.name, f.problem]);
}

describe('rebuild', () => {
  it('a map that matches the Services rebuilds to the same values with no findings', () => {
    const stored = allocatorWith(RANGE, ['10.0.0.5', '10.0.0.6']);
    const result = rebuild(
      RANGE,
      stored,
      [ipClaim('a', '10.0.0.5'), ipClaim('b', '10.0.0.6')],
      new LeakTracker(),
    );
    expect(result.findings).to.deep.equal([]);
    expect([...result.rebuilt.values()]).to.deep.equal(['10.0.0.5', '10.0.0.6']);
    expect(result.keptLeaks).to.deep.equal([]);
    expect(result.freedLeaks).to.deep.equal([]);
  });

  it('a value two Services hold is a duplicate finding on the second, naming the first as holder', () => {
    const stored = allocatorWith(RANGE, ['10.0.0.5']);
    const first = ipClaim('a', '10.0.0.5');
    const second = ipClaim('b', '10.0.0.5');
    const result = rebuild(RANGE, stored, [first, second], new LeakTracker());
    expect(result.findings).to.deep.equal([
      { claim: second, problem: 'duplicate', heldBy: { namespace: 'default', name: 'a' } },
    ]);
    expect([...result.rebuilt.values()]).to.deep.equal(['10.0.0.5']);
  });

  it('a value outside the CIDR is outOfRange and not put in the map', () => {
    const claim = ipClaim('a', '10.0.1.5');
    const result = rebuild(RANGE, allocatorWith(RANGE, []), [claim], new LeakTracker());
    expect(result.findings).to.deep.equal([{ claim, problem: 'outOfRange' }]);
    expect(result.rebuilt.used()).to.equal(0);
  });

  it('the network and broadcast addresses of an IPv4 range are outOfRange, not full', () => {
    const network = ipClaim('a', '10.0.0.0');
    const broadcast = ipClaim('b', '10.0.0.255');
    const result = rebuild(RANGE, allocatorWith(RANGE, []), [network, broadcast], new LeakTracker());
    expect(result.findings).to.deep.equal([
      { claim: network, problem: 'outOfRange' },
      { claim: broadcast, problem: 'outOfRange' },
    ]);
  });

  it('an unparsable value and one of a family not configured are invalid', () => {
    const unparsable = ipClaim('a', 'not-an-ip', { value: undefined });
    const foreign = ipClaim('b', 'fd00::5', { foreign: true });
    const result = rebuild(RANGE, allocatorWith(RANGE, []), [unparsable, foreign], new LeakTracker());
    expect(result.findings).to.deep.equal([
      { claim: unparsable, problem: 'invalid' },
      { claim: foreign, problem: 'invalid' },
    ]);
    expect(result.rebuilt.used()).to.equal(0);
  });

  it('a value in range that the stored map lacks is notAllocated and marked in the rebuilt map', () => {
    const stored = allocatorWith(RANGE, ['10.0.0.5']);
    const missing = ipClaim('b', '10.0.0.7');
    const result = rebuild(RANGE, stored, [ipClaim('a', '10.0.0.5'), missing], new LeakTracker());
    expect(result.findings).to.deep.equal([{ claim: missing, problem: 'notAllocated' }]);
    expect([...result.rebuilt.values()]).to.deep.equal(['10.0.0.5', '10.0.0.7']);
  });

  it('with no stored map nothing is notAllocated and nothing leaks', () => {
    const tracker = new LeakTracker<string>();
    const claims = [ipClaim('a', '10.0.0.5'), ipClaim('b', '10.0.0.5'), ipClaim('c', '10.0.1.1')];
    const result = rebuild(RANGE, undefined, claims, tracker);
    expect(problems(result)).to.deep.equal([
      ['b', 'duplicate'],
      ['c', 'outOfRange'],
    ]);
    expect([...result.rebuilt.values()]).to.deep.equal(['10.0.0.5']);
    expect(result.keptLeaks).to.deep.equal([]);
    expect(result.freedLeaks).to.deep.equal([]);
    expect(tracker.size()).to.equal(0);
  });

  it('in a capped IPv6 range a value inside the CIDR past the 65,536 the map holds is full', () => {
    const range = new IPRange('fd00::/64');
    const past = ipClaim('a', 'fd00::1:1');
    const outside = ipClaim('b', 'fd00:0:0:1::1');
    const last = ipClaim('c', 'fd00::1:0');
    const result = rebuild(
      range,
      allocatorWith(range, ['fd00::1:0']),
      [past, outside, last],
      new LeakTracker(),
    );
    expect(result.findings).to.deep.equal([
      { claim: past, problem: 'full' },
      { claim: outside, problem: 'outOfRange' },
    ]);
    expect([...result.rebuilt.values()]).to.deep.equal(['fd00::1:0']);
  });

  it('node ports: duplicate, outOfRange and notAllocated as for IPs', () => {
    const range = new PortRange('30000-32767');
    const stored = allocatorWith(range, [30080]);
    const result = rebuild(
      range,
      stored,
      [portClaim('a', 30080), portClaim('b', 30080), portClaim('c', 29999), portClaim('d', 30443)],
      new LeakTracker(),
    );
    expect(problems(result)).to.deep.equal([
      ['b', 'duplicate'],
      ['c', 'outOfRange'],
      ['d', 'notAllocated'],
    ]);
    expect(result.findings[0].heldBy).to.deep.equal({ namespace: 'default', name: 'a' });
    expect([...result.rebuilt.values()]).to.deep.equal([30080, 30443]);
  });

  describe('leaks', () => {
    it(`a value no Service holds is kept on passes 1 and 2 and freed on pass ${PASSES_BEFORE_LEAK_RELEASE}`, () => {
      const tracker = new LeakTracker<string>();
      const claims = [ipClaim('a', '10.0.0.5')];
      let stored = allocatorWith(RANGE, ['10.0.0.5', '10.0.0.9']);

      const pass1 = rebuild(RANGE, stored, claims, tracker);
      expect(pass1.keptLeaks).to.deep.equal(['10.0.0.9']);
      expect(pass1.freedLeaks).to.deep.equal([]);
      expect([...pass1.rebuilt.values()]).to.deep.equal(['10.0.0.5', '10.0.0.9']);
      expect(pass1.findings).to.deep.equal([]);
      expect(tracker.size()).to.equal(1);
      stored = pass1.rebuilt;

      const pass2 = rebuild(RANGE, stored, claims, tracker);
      expect(pass2.keptLeaks).to.deep.equal(['10.0.0.9']);
      expect(pass2.freedLeaks).to.deep.equal([]);
      expect([...pass2.rebuilt.values()]).to.deep.equal(['10.0.0.5', '10.0.0.9']);
      stored = pass2.rebuilt;

      const pass3 = rebuild(RANGE, stored, claims, tracker);
      expect(pass3.keptLeaks).to.deep.equal([]);
      expect(pass3.freedLeaks).to.deep.equal(['10.0.0.9']);
      expect([...pass3.rebuilt.values()]).to.deep.equal(['10.0.0.5']);
      expect(tracker.size()).to.equal(0);
    });

    it('a leaked value that a Service uses again starts counting from the beginning when it leaks again', () => {
      const tracker = new LeakTracker<string>();
      const stored = allocatorWith(RANGE, ['10.0.0.9']);
      const none: Claim<string>[] = [];

      expect(rebuild(RANGE, stored, none, tracker).keptLeaks).to.deep.equal(['10.0.0.9']);
      expect(rebuild(RANGE, stored, none, tracker).keptLeaks).to.deep.equal(['10.0.0.9']);
      // A create that was in flight lands: the value is held, no longer a leak.
      const held = rebuild(RANGE, stored, [ipClaim('a', '10.0.0.9')], tracker);
      expect(held.keptLeaks).to.deep.equal([]);
      expect(held.freedLeaks).to.deep.equal([]);
      expect(tracker.size()).to.equal(0);
      // Deleted again, but the delete was not seen: three more passes before it is freed.
      expect(rebuild(RANGE, stored, none, tracker).keptLeaks).to.deep.equal(['10.0.0.9']);
      expect(rebuild(RANGE, stored, none, tracker).keptLeaks).to.deep.equal(['10.0.0.9']);
      const freed = rebuild(RANGE, stored, none, tracker);
      expect(freed.freedLeaks).to.deep.equal(['10.0.0.9']);
      expect(freed.rebuilt.used()).to.equal(0);
    });

    it('a leak freed elsewhere is forgotten by the tracker', () => {
      const tracker = new LeakTracker<string>();
      rebuild(RANGE, allocatorWith(RANGE, ['10.0.0.9', '10.0.0.10']), [], tracker);
      expect(tracker.size()).to.equal(2);
      rebuild(RANGE, allocatorWith(RANGE, ['10.0.0.10']), [], tracker);
      expect(tracker.size()).to.equal(1);
    });
  });
});

describe('LeakTracker', () => {
  it('keep() answers true, true, then false for the same value', () => {
    const tracker = new LeakTracker<number>();
    expect([tracker.keep(30080), tracker.keep(30080), tracker.keep(30080)]).to.deep.equal([
      true,
      true,
      false,
    ]);
    expect(tracker.size()).to.equal(0);
  });

  it("a clone counts on its own: the original is unchanged by the clone's passes", () => {
    const tracker = new LeakTracker<number>();
    tracker.keep(30080);
    const copy = tracker.clone();
    expect(copy.keep(30080)).to.equal(true);
    expect(copy.keep(30080)).to.equal(false);
    expect(tracker.size()).to.equal(1);
    expect(tracker.keep(30080)).to.equal(true);
  });

  it('retainOnly forgets values that are no longer leaked', () => {
    const tracker = new LeakTracker<number>();
    tracker.keep(1);
    tracker.keep(2);
    tracker.retainOnly(new Set([2]));
    expect(tracker.size()).to.equal(1);
    expect(tracker.keep(1)).to.equal(true);
    expect(tracker.keep(2)).to.equal(true);
    expect(tracker.keep(2)).to.equal(false);
  });
});
