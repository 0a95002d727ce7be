import { expect } from 'chai';
import {
  claimInEveryRepeat,
  claimText,
  countText,
  managerOrder,
  median,
  medianOf,
  spreadOf,
  spreadText,
} from '../../../bench/aggregate.ts';

const thousands = (n: number): string => Math.round(n).toLocaleString('en-US');
const seconds = (n: number): string => n.toFixed(3);

describe('bench aggregate', () => {
  it('median: the middle value of an odd count, the mean of the middle two of an even one', () => {
    expect(median([3, 1, 2])).to.equal(2);
    expect(median([10_210, 11_030])).to.equal(10_620);
    expect(median([4, 1, 3, 2])).to.equal(2.5);
    expect(median([7])).to.equal(7);
    expect(median([])).to.be.NaN;
  });

  it('spreadOf leaves out absent figures and NaN (null in JSON), and counts them', () => {
    expect(spreadOf([0.3, null, 0.1, undefined, Number.NaN, 0.2])).to.deep.equal({
      median: 0.2,
      min: 0.1,
      max: 0.3,
      samples: 3,
      missing: 3,
    });
    expect(spreadOf([undefined, null])).to.equal(undefined);
    expect(medianOf([undefined])).to.be.NaN;
  });

  it('spreadText: median (min–max); one figure for one repeat or when all read the same', () => {
    expect(spreadText([10_574, 10_210, 11_030], thousands)).to.equal('10,574 (10,210–11,030)');
    // Two repeats: the median is their mean.
    expect(spreadText([0.21, 0.3], seconds)).to.equal('0.255 (0.210–0.300)');
    expect(spreadText([846], countText)).to.equal('846');
    expect(spreadText([846, 847], countText)).to.equal('846.5 (846–847)');
    // Equal at the precision shown: no range.
    expect(spreadText([237.2, 237.4], (n) => n.toFixed(0))).to.equal('237');
    expect(spreadText([0.2, null, 0.4], seconds)).to.equal('0.300 (0.200–0.400, 1 of 3 without)');
    expect(spreadText([5, undefined], countText)).to.equal('5 (1 of 2 without)');
    expect(spreadText([undefined, undefined], countText)).to.equal('—');
    expect(spreadText([], countText)).to.equal('—');
  });

  it('countText keeps integers and shows the .5 of a median between two', () => {
    expect(countText(1514)).to.equal('1514');
    expect(countText(1514.5)).to.equal('1514.5');
  });

  it('managerOrder rotates by one each repeat, so the two managers alternate going first', () => {
    const two = ['ours', 'kube-controller-manager'];
    expect([1, 2, 3, 4].map((r) => managerOrder(two, r))).to.deep.equal([
      ['ours', 'kube-controller-manager'],
      ['kube-controller-manager', 'ours'],
      ['ours', 'kube-controller-manager'],
      ['kube-controller-manager', 'ours'],
    ]);
    expect(managerOrder(['ours'], 2)).to.deep.equal(['ours']);
    expect(managerOrder(['a', 'b', 'c'], 3)).to.deep.equal(['c', 'a', 'b']);
    expect(managerOrder([], 1)).to.deep.equal([]);
  });

  it('claimInEveryRepeat: yes only when ours <= kcm held in each repeat, ties included', () => {
    const every = claimInEveryRepeat([
      [1, 2],
      [2, 2],
      [0.5, 3],
    ]);
    expect(every).to.deep.equal({ repeats: 3, held: 3, missing: 0 });
    expect(claimText(every)).to.equal('yes (3 of 3)');
    // Better on the median (1.1 vs 1.5) but not in repeat 2: not claimed.
    const once = claimInEveryRepeat([
      [1, 1.5],
      [2, 1.4],
      [1.1, 1.6],
    ]);
    expect(claimText(once)).to.equal('no (2 of 3)');
    // A repeat without a figure (a converge that timed out) cannot count as held.
    expect(
      claimText(
        claimInEveryRepeat([
          [1, 2],
          [null, 2],
        ]),
      ),
    ).to.equal('no (1 of 2, 1 without both figures)');
    expect(claimText(claimInEveryRepeat([]))).to.equal('—');
  });
});
