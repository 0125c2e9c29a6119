/**
 * The offline tools and a running broker: `lance` holds `<data>/lance.lock` (broker/src/server/data-dir-lock.ts).
 * Commands that write (repair, rebuild-index, import-topic) refuse to touch a data dir a live broker holds; the
 * read-only ones print a warning (what they report may change under them).
 */
import { promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { LanceError } from '../../common/errors.ts';
import { isLiveBroker, LOCK_FILE } from '../../server/data-dir-lock.ts';

const HolderSchema = z.object({ pid: z.number().int().positive(), host: z.string(), startedAt: z.string().optional() });
export type LockHolder = z.infer<typeof HolderSchema>;

/** The live broker holding the data dir that contains `p` (searched upwards: segment → partition → topic → data). */
export async function liveBrokerFor(p: string): Promise<{ file: string; holder: LockHolder } | null> {
  let dir = path.resolve(p);
  const st = await fsp.stat(dir).catch(() => null);
  if (st && !st.isDirectory()) dir = path.dirname(dir);
  for (let i = 0; i < 4; i++) {
    const file = path.join(dir, LOCK_FILE);
    const text = await fsp.readFile(file, 'utf8').catch(() => null);
    if (text !== null) {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        return null; // half-written lock: its writer died before finishing (the broker treats it as stale too)
      }
      const h = HolderSchema.safeParse(raw);
      if (!h.success) return null;
      // another host on a shared volume cannot be checked: assume it is alive
      const live = h.data.host !== hostname() || isLiveBroker(h.data.pid);
      return live ? { file, holder: h.data } : null;
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

export async function refuseIfBrokerRunning(p: string, flag = '--path'): Promise<void> {
  const b = await liveBrokerFor(p);
  if (b) {
    throw new LanceError('CONFLICT', `${flag} ${p}: the data dir is in use by a running broker (pid ${b.holder.pid} on ${b.holder.host}, ${b.file}); stop it first (runbook: systemctl stop lance)`, { file: b.file, pid: b.holder.pid });
  }
}

export async function brokerRunningWarning(p: string): Promise<string | null> {
  const b = await liveBrokerFor(p);
  return b ? `lnc: warning: a broker is running on this data dir (pid ${b.holder.pid} on ${b.holder.host}); it may change the files while they are read` : null;
}
