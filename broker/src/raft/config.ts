/** Membership config encoding (the payload of CONFIG entries) and small quorum helpers. */
import { z } from 'zod';
import { LanceError } from '../common/errors.ts';
import type { ClusterConfig, NodeId } from './types.ts';

const configSchema = z.object({
  voters: z.array(z.number().int().nonnegative()),
  learners: z.array(z.number().int().nonnegative()),
});

export function normalizeConfig(c: ClusterConfig): ClusterConfig {
  const voters = [...new Set(c.voters)].sort((a, b) => a - b);
  const learners = [...new Set(c.learners)].filter((id) => !voters.includes(id)).sort((a, b) => a - b);
  return { voters, learners };
}

export function encodeConfig(c: ClusterConfig): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(normalizeConfig(c)));
}

/** Decodes a CONFIG entry payload; `where` names the entry in the error (e.g. "entry 42"). */
export function decodeConfig(data: Uint8Array, where: string): ClusterConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(data));
  } catch (cause) {
    throw new LanceError('CORRUPT', `raft config ${where}: payload is not JSON`, { where }, { cause });
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new LanceError('CORRUPT', `raft config ${where}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, { where });
  }
  return normalizeConfig(parsed.data);
}

export function quorum(voters: readonly NodeId[]): number {
  return Math.floor(voters.length / 2) + 1;
}

export function sameConfig(a: ClusterConfig, b: ClusterConfig): boolean {
  return a.voters.length === b.voters.length && a.learners.length === b.learners.length &&
    a.voters.every((v, i) => b.voters[i] === v) && a.learners.every((v, i) => b.learners[i] === v);
}
