/**
 * `<dataDir>/lance.lock`: one broker per data dir. Two processes appending to the same segments would corrupt
 * them, so a second `lance` on a data dir in use refuses to start. The lock is a file created exclusively
 * (O_EXCL) holding the owner's pid and host; a lock left by a process that is gone (SIGKILL, crash, a previous
 * container whose pid was also 1) is taken over. Offline `lnc` tools can read it to warn about a live broker.
 */
import { readFileSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { LanceError, ioError } from '../common/errors.ts';
import { fsyncDir } from '../common/fsutil.ts';

export const LOCK_FILE = 'lance.lock';

export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
}

export interface DataDirLock {
  file: string;
  release(): Promise<void>;
}

/** Is `pid` a live process that looks like a lance broker? (Linux /proc; elsewhere: alive = assumed lance.) */
export function isLiveBroker(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else: treat as alive
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('lance');
  } catch {
    return true;
  }
}

/** Pure: may a lock held by `holder` be taken over by this process? */
export function isStale(holder: LockHolder | undefined, self: { pid: number; host: string }, alive: (pid: number) => boolean): boolean {
  if (!holder) return true; // unreadable/half-written lock: its writer died before finishing
  if (holder.host !== self.host) return false; // another machine on a shared volume: never steal
  if (holder.pid === self.pid) return true; // our own pid from an earlier life (containers: pid 1 again)
  return !alive(holder.pid);
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const j = JSON.parse(text) as Partial<LockHolder>;
    if (typeof j.pid === 'number' && typeof j.host === 'string') return { pid: j.pid, host: j.host, startedAt: String(j.startedAt ?? '') };
  } catch {
    /* half-written */
  }
  return undefined;
}

export async function acquireDataDirLock(dataDir: string): Promise<DataDirLock> {
  const file = path.join(dataDir, LOCK_FILE);
  const self = { pid: process.pid, host: hostname() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o644);
      try {
        await fh.writeFile(JSON.stringify({ ...self, startedAt: new Date().toISOString() }) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsyncDir(dataDir);
      return {
        file,
        release: async () => {
          await rm(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('create lock', file, e);
    }
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile: retry
      throw ioError('read lock', file, e);
    }
    const holder = parseHolder(text);
    if (!isStale(holder, self, isLiveBroker)) {
      throw new LanceError('CONFLICT', `${dataDir} is in use by another lance process (pid ${holder!.pid} on ${holder!.host}, since ${holder!.startedAt}; ${file}); stop it first`, { file, pid: holder!.pid });
    }
    await rm(file, { force: true });
  }
  throw new LanceError('CONFLICT', `${file}: could not take the data dir lock (another process keeps re-creating it)`, { file });
}
