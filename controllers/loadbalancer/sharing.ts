/**
 * When Services may share one load-balancer address (annotation `scm.dev/allow-shared-ip`), as
 * MetalLB decides it:
 * - both carry the same, non-empty sharing key;
 * - no (protocol, port) pair of one is also a pair of the other (the address would not know
 *   which Service a packet is for);
 * - when either has `externalTrafficPolicy: Local`, both select the same pods (equal selectors):
 *   the address is announced from the nodes of those pods only, so the two must agree on them.
 *
 * Pure.
 */
import type { V1Service } from '@kubernetes/client-node';
import { SHARING_KEY_ANNOTATION } from './types.ts';

/** What sharing needs of a Service, kept with each address it holds. */
export interface SharingProfile {
  key: string;
  sharingKey: string | undefined;
  /** `TCP/80`, `UDP/53`, ... */
  ports: readonly string[];
  externalTrafficLocal: boolean;
  /** The selector as canonical JSON (sorted keys), for equality. */
  selector: string;
}

export function sharingProfile(key: string, svc: V1Service): SharingProfile {
  const sharingKey = svc.metadata?.annotations?.[SHARING_KEY_ANNOTATION]?.trim() || undefined;
  const selector = svc.spec?.selector ?? {};
  const sorted = Object.fromEntries(
    Object.entries(selector).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  return {
    key,
    sharingKey,
    ports: (svc.spec?.ports ?? []).map((p) => `${p.protocol ?? 'TCP'}/${p.port}`),
    externalTrafficLocal: svc.spec?.externalTrafficPolicy === 'Local',
    selector: JSON.stringify(sorted),
  };
}

/** Why `a` and `b` cannot share an address, or undefined when they can. */
export function sharingConflict(a: SharingProfile, b: SharingProfile): string | undefined {
  if (a.sharingKey === undefined || b.sharingKey === undefined) {
    return `${b.key} holds it and ${a.sharingKey === undefined ? 'this Service has' : 'it has'} no ${SHARING_KEY_ANNOTATION} key`;
  }
  if (a.sharingKey !== b.sharingKey) {
    return `${b.key} holds it with sharing key ${JSON.stringify(b.sharingKey)}, not ${JSON.stringify(a.sharingKey)}`;
  }
  const theirs = new Set(b.ports);
  const clash = a.ports.find((p) => theirs.has(p));
  if (clash !== undefined) return `${b.key} shares the key but also uses port ${clash}`;
  if ((a.externalTrafficLocal || b.externalTrafficLocal) && a.selector !== b.selector) {
    return `${b.key} shares the key but with externalTrafficPolicy Local both must select the same pods`;
  }
  return undefined;
}

/** Why `profile` cannot join every holder of an address, or undefined when it can. */
export function sharingConflictWithAll(
  profile: SharingProfile,
  holders: Iterable<SharingProfile>,
): string | undefined {
  for (const h of holders) {
    if (h.key === profile.key) continue;
    const why = sharingConflict(profile, h);
    if (why !== undefined) return why;
  }
  return undefined;
}
