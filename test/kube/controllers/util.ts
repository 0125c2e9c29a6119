import { createHash, randomBytes } from 'node:crypto';
import type { KObject, OwnerReference } from '../types.ts';

export function controllerRef(owner: KObject): OwnerReference {
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name!, uid: owner.metadata.uid!, controller: true, blockOwnerDeletion: true };
}

export function ownedBy(o: KObject, owner: KObject): boolean {
  return !!o.metadata.ownerReferences?.some((r) => r.uid === owner.metadata.uid && r.controller);
}

/** Short stable hash of a pod template (kube's controller-revision-hash / pod-template-hash role). */
export function templateHash(template: unknown): string {
  return createHash('sha256').update(JSON.stringify(template ?? {})).digest('hex').slice(0, 10);
}

export function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join('');
}

export function isPodReady(p: KObject): boolean {
  return p.status?.phase === 'Running' && !p.metadata.deletionTimestamp
    && (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True');
}

export function nowTs(): string { return new Date().toISOString().replace(/\.\d+Z$/, 'Z'); }
