/**
 * `<dataDir>/node.json`: which cluster and node a data dir belongs to. Written once (atomically) on first start,
 * checked on every later start so a disk is never silently adopted by another cluster or node.
 */
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { z } from 'zod';
import { LanceError, ioError } from '../common/errors.ts';
import { atomicWriteJson, mkdirDurable } from '../common/fsutil.ts';

export const NodeIdentitySchema = z.object({
  version: z.literal(1),
  clusterId: z.string().min(1),
  nodeId: z.number().int().nonnegative(),
  createdAt: z.string(),
  /**
   * 'pending': this data dir was created empty by this broker (first start, or a wiped disk under a known id), so
   * its Raft groups start in vote hold until they caught up (broker/src/cluster/fresh-node.ts); cleared once they
   * all did. Absent on older files and on data dirs made by a restore (their term state is consistent).
   */
  voteHold: z.literal('pending').optional(),
});
export type NodeIdentity = z.infer<typeof NodeIdentitySchema>;

export const NODE_FILE = 'node.json';

export type IdentityDecision =
  | { action: 'use'; identity: NodeIdentity }
  | { action: 'create'; identity: NodeIdentity }
  | { action: 'refuse'; error: LanceError };

/** Pure: what to do given what is on disk and what is configured. */
export function decideIdentity(
  existing: NodeIdentity | undefined,
  configured: { clusterId: string | undefined; nodeId: number },
  fresh: { clusterId: string; now: string },
  file: string,
): IdentityDecision {
  if (!existing) {
    return { action: 'create', identity: { version: 1, clusterId: configured.clusterId ?? fresh.clusterId, nodeId: configured.nodeId, createdAt: fresh.now } };
  }
  if (configured.clusterId !== undefined && configured.clusterId !== existing.clusterId) {
    return {
      action: 'refuse',
      error: new LanceError('CONFLICT', `${file}: data dir belongs to cluster "${existing.clusterId}", but clusterId is configured as "${configured.clusterId}"; refusing to start`, { file, onDisk: existing.clusterId, configured: configured.clusterId }),
    };
  }
  if (configured.nodeId !== existing.nodeId) {
    return {
      action: 'refuse',
      error: new LanceError('CONFLICT', `${file}: data dir belongs to node ${existing.nodeId}, but nodeId is configured as ${configured.nodeId}; refusing to start`, { file, onDisk: existing.nodeId, configured: configured.nodeId }),
    };
  }
  return { action: 'use', identity: existing };
}

export async function readNodeIdentity(dataDir: string): Promise<NodeIdentity | undefined> {
  const file = path.join(dataDir, NODE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError('read', file, e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LanceError('CORRUPT', `${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`, { file });
  }
  const r = NodeIdentitySchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new LanceError('CORRUPT', `${file}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`, { file });
  }
  return r.data;
}

/** Reads node.json, creates it on a fresh data dir, or throws CONFLICT when it belongs elsewhere. */
export async function ensureNodeIdentity(dataDir: string, configured: { clusterId: string | undefined; nodeId: number }): Promise<NodeIdentity> {
  await mkdirDurable(dataDir);
  const file = path.join(dataDir, NODE_FILE);
  const decision = decideIdentity(await readNodeIdentity(dataDir), configured, { clusterId: `lance-${randomUUID()}`, now: new Date().toISOString() }, file);
  if (decision.action === 'refuse') throw decision.error;
  if (decision.action === 'create') {
    // a new node.json means empty storage: mark it so cluster mode holds its votes (single-node mode ignores it)
    const identity: NodeIdentity = { ...decision.identity, voteHold: 'pending' };
    await atomicWriteJson(file, identity);
    return identity;
  }
  return decision.identity;
}
