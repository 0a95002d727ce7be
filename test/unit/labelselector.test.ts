import { expect } from 'chai';
import { type LabelSelector, labelSelectorMatches } from '../../shared/kube/labels.ts';

const LABELS = { app: 'web', tier: 'front', empty: '' };

describe('labelSelectorMatches (metav1.LabelSelector)', () => {
  const cases: {
    name: string;
    selector: LabelSelector | undefined;
    labels: Record<string, string> | undefined;
    want: boolean;
  }[] = [
    { name: 'an absent selector matches everything', selector: undefined, labels: LABELS, want: true },
    {
      name: 'an absent selector matches an object without labels',
      selector: undefined,
      labels: undefined,
      want: true,
    },
    { name: 'an empty selector matches everything', selector: {}, labels: LABELS, want: true },
    {
      name: 'empty matchLabels and matchExpressions match everything',
      selector: { matchLabels: {}, matchExpressions: [] },
      labels: undefined,
      want: true,
    },
    {
      name: 'matchLabels: every pair present matches',
      selector: { matchLabels: { app: 'web', tier: 'front' } },
      labels: LABELS,
      want: true,
    },
    {
      name: 'matchLabels: one value differing does not match',
      selector: { matchLabels: { app: 'web', tier: 'back' } },
      labels: LABELS,
      want: false,
    },
    {
      name: 'matchLabels: a missing label does not match',
      selector: { matchLabels: { zone: 'a' } },
      labels: LABELS,
      want: false,
    },
    {
      name: 'matchLabels: no labels at all does not match',
      selector: { matchLabels: { app: 'web' } },
      labels: undefined,
      want: false,
    },
    {
      name: 'matchLabels: an empty value requires the label with an empty value',
      selector: { matchLabels: { empty: '' } },
      labels: LABELS,
      want: true,
    },
    {
      name: 'matchLabels: an empty value does not match a missing label',
      selector: { matchLabels: { zone: '' } },
      labels: LABELS,
      want: false,
    },
    {
      name: 'matchLabels: inherited object keys are not labels',
      selector: { matchLabels: { toString: 'x' } },
      labels: {},
      want: false,
    },
    {
      name: 'In: the value among the values matches',
      selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['api', 'web'] }] },
      labels: LABELS,
      want: true,
    },
    {
      name: 'In: a value not among the values does not match',
      selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['api'] }] },
      labels: LABELS,
      want: false,
    },
    {
      name: 'In: a missing label does not match',
      selector: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] },
      labels: LABELS,
      want: false,
    },
    {
      name: 'NotIn: a value not among the values matches',
      selector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['api'] }] },
      labels: LABELS,
      want: true,
    },
    {
      name: 'NotIn: a value among the values does not match',
      selector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] },
      labels: LABELS,
      want: false,
    },
    {
      name: 'NotIn: a missing label matches',
      selector: { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] },
      labels: LABELS,
      want: true,
    },
    {
      name: 'Exists: a present label matches, even with an empty value',
      selector: { matchExpressions: [{ key: 'empty', operator: 'Exists' }] },
      labels: LABELS,
      want: true,
    },
    {
      name: 'Exists: a missing label does not match',
      selector: { matchExpressions: [{ key: 'zone', operator: 'Exists' }] },
      labels: LABELS,
      want: false,
    },
    {
      name: 'DoesNotExist: a missing label matches',
      selector: { matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] },
      labels: LABELS,
      want: true,
    },
    {
      name: 'DoesNotExist: a present label does not match',
      selector: { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] },
      labels: LABELS,
      want: false,
    },
    {
      name: 'DoesNotExist: an object without labels matches',
      selector: { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] },
      labels: undefined,
      want: true,
    },
    {
      name: 'an unknown operator matches nothing',
      selector: { matchExpressions: [{ key: 'app', operator: 'Gt', values: ['1'] }] },
      labels: LABELS,
      want: false,
    },
    {
      name: 'operators are case-sensitive: "in" is unknown',
      selector: { matchExpressions: [{ key: 'app', operator: 'in', values: ['web'] }] },
      labels: LABELS,
      want: false,
    },
    {
      name: 'matchLabels and matchExpressions are ANDed: both hold',
      selector: {
        matchLabels: { app: 'web' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['front'] },
          { key: 'zone', operator: 'DoesNotExist' },
        ],
      },
      labels: LABELS,
      want: true,
    },
    {
      name: 'matchLabels and matchExpressions are ANDed: one expression failing fails all',
      selector: {
        matchLabels: { app: 'web' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['front'] },
          { key: 'app', operator: 'NotIn', values: ['web'] },
        ],
      },
      labels: LABELS,
      want: false,
    },
    {
      name: 'matchLabels and matchExpressions are ANDed: matchLabels failing fails all',
      selector: {
        matchLabels: { app: 'api' },
        matchExpressions: [{ key: 'tier', operator: 'Exists' }],
      },
      labels: LABELS,
      want: false,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(labelSelectorMatches(c.selector, c.labels)).to.equal(c.want);
    });
  }
});
