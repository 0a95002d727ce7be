import { expect } from 'chai';
import { crossedThresholds } from '../../../shared/allocator/utilization.ts';

describe('crossedThresholds', () => {
  it('79% -> 80% crosses 80', () => {
    expect(crossedThresholds(79, 80)).to.deep.equal([80]);
  });

  it('79% -> 96% crosses 80 and 95, ascending', () => {
    expect(crossedThresholds(79, 96)).to.deep.equal([80, 95]);
  });

  it('80% -> 85% crosses nothing: 80 was reached before', () => {
    expect(crossedThresholds(80, 85)).to.deep.equal([]);
  });

  it('96% -> 97% crosses nothing', () => {
    expect(crossedThresholds(96, 97)).to.deep.equal([]);
  });

  it('94% -> 95% crosses 95 only', () => {
    expect(crossedThresholds(94, 95)).to.deep.equal([95]);
  });

  it('0% -> 100% crosses both', () => {
    expect(crossedThresholds(0, 100)).to.deep.equal([80, 95]);
  });

  it('going down (96% -> 50%) crosses nothing', () => {
    expect(crossedThresholds(96, 50)).to.deep.equal([]);
  });
});
