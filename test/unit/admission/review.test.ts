import { expect } from 'chai';
import {
  allow,
  deny,
  InvalidReviewError,
  jsonPointer,
  parseReview,
  toReviewResponse,
  type JsonPatchOperation,
} from '../../../shared/admission/review.ts';

function review(request: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'b6f2c4c8-0d4e-4f43-9d61-3f1c2b7c9a10',
      kind: { group: '', version: 'v1', kind: 'Service' },
      resource: { group: '', version: 'v1', resource: 'services' },
      operation: 'CREATE',
      namespace: 'default',
      name: 'web',
      object: { metadata: { name: 'web' } },
      ...request,
    },
  };
}

describe('jsonPointer', () => {
  it('joins segments with a leading slash for each', () => {
    expect(jsonPointer('metadata', 'labels', 'app')).to.equal('/metadata/labels/app');
  });

  it('escapes "/" as ~1 and "~" as ~0', () => {
    expect(jsonPointer('metadata', 'annotations', 'example.com/a~b')).to.equal(
      '/metadata/annotations/example.com~1a~0b',
    );
  });

  it('escapes "~" before "/", so a literal "~1" stays distinguishable from "/"', () => {
    expect(jsonPointer('~1')).to.equal('/~01');
    expect(jsonPointer('/')).to.equal('/~1');
  });

  it('renders array indexes as numbers and no segments as the whole document', () => {
    expect(jsonPointer('spec', 'ports', 0, 'port')).to.equal('/spec/ports/0/port');
    expect(jsonPointer()).to.equal('');
    expect(jsonPointer('')).to.equal('/');
  });
});

describe('toReviewResponse', () => {
  it('an allowed result without a patch has neither patch nor patchType', () => {
    expect(toReviewResponse('uid-1', allow())).to.deep.equal({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'uid-1', allowed: true },
    });
  });

  it('an empty patch is not sent', () => {
    expect(toReviewResponse('uid-1', allow([])).response).to.deep.equal({ uid: 'uid-1', allowed: true });
  });

  it('a patch is sent as base64 of its JSON with patchType JSONPatch', () => {
    const patch: JsonPatchOperation[] = [
      { op: 'add', path: jsonPointer('metadata', 'labels', 'example.com/x'), value: 'ü' },
      { op: 'remove', path: '/spec/externalIPs' },
    ];
    const response = toReviewResponse('uid-2', allow(patch, ['spec.foo is deprecated'])).response;
    expect(response.allowed).to.equal(true);
    expect(response.patchType).to.equal('JSONPatch');
    expect(response.warnings).to.deep.equal(['spec.foo is deprecated']);
    expect(response.status).to.equal(undefined);
    expect(JSON.parse(Buffer.from(response.patch ?? '', 'base64').toString('utf8'))).to.deep.equal(patch);
    expect(response.patch).to.equal(
      Buffer.from(
        '[{"op":"add","path":"/metadata/labels/example.com~1x","value":"ü"},' +
          '{"op":"remove","path":"/spec/externalIPs"}]',
        'utf8',
      ).toString('base64'),
    );
  });

  it('a denial carries a Status with its code, reason and message, and no patch', () => {
    expect(toReviewResponse('uid-3', deny(422, 'Invalid', 'spec.type: Unsupported value'))).to.deep.equal({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: 'uid-3',
        allowed: false,
        status: { code: 422, reason: 'Invalid', message: 'spec.type: Unsupported value', metadata: {} },
      },
    });
  });
});

describe('parseReview', () => {
  it('returns the request of an admission.k8s.io/v1 AdmissionReview as sent', () => {
    const body = review({ dryRun: true, oldObject: null });
    const parsed = parseReview(body);
    expect(parsed.request).to.deep.equal(body.request);
    expect(parsed.request.uid).to.equal('b6f2c4c8-0d4e-4f43-9d61-3f1c2b7c9a10');
  });

  const bad: [string, unknown, string][] = [
    ['a non-object', 'x', 'the body is not a JSON object'],
    ['an array', [], 'the body is not a JSON object'],
    [
      'v1beta1',
      { ...review({}), apiVersion: 'admission.k8s.io/v1beta1' },
      'want apiVersion admission.k8s.io/v1 and kind AdmissionReview, got "admission.k8s.io/v1beta1" and "AdmissionReview"',
    ],
    [
      'another kind',
      { ...review({}), kind: 'Status' },
      'want apiVersion admission.k8s.io/v1 and kind AdmissionReview, got "admission.k8s.io/v1" and "Status"',
    ],
    [
      'no request',
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' },
      'the AdmissionReview has no request',
    ],
    ['no uid', review({ uid: undefined }), 'request.uid must be a non-empty string'],
    ['an empty uid', review({ uid: '' }), 'request.uid must be a non-empty string'],
    [
      'an unknown operation',
      review({ operation: 'PATCH' }),
      'request.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got "PATCH"',
    ],
    ['no kind', review({ kind: undefined }), 'request.kind must be an object'],
    [
      'a resource without a version',
      review({ resource: { group: '', resource: 'services' } }),
      'request.resource.version must be a string',
    ],
  ];
  for (const [what, body, message] of bad) {
    it(`refuses ${what} with an InvalidReviewError naming the problem`, () => {
      expect(() => parseReview(body))
        .to.throw(InvalidReviewError)
        .with.property('message', message);
    });
  }
});
