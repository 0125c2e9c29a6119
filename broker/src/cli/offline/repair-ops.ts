/**
 * The write side of the offline tools: every change is crash-safe (copies aside are written temp → fsync → rename
 * → fsync(dir) before anything is cut; truncations are fsynced; index files are replaced atomically).
 * Copies aside follow the storage engine's naming: `<segment>.lnc.corrupt-<unix ms>`.
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ioError } from '../../common/errors.ts';
import { atomicWriteFile, fsyncDir } from '../../common/fsutil.ts';
import type { SegmentIndex } from '../../storage/index-file.ts';
import { indexPathsFor } from './layout.ts';

/** A fresh `<file>.corrupt-<ms>` name that does not exist yet. */
export function corruptCopyName(file: string, now = Date.now()): string {
  let ts = now;
  while (fs.existsSync(`${file}.corrupt-${ts}`)) ts++;
  return `${file}.corrupt-${ts}`;
}

/** Copies bytes [from, to) of `file` to a new `.corrupt-<ms>` file, durably; returns its path. */
export async function copyAside(file: string, from: number, to: number): Promise<string> {
  const target = corruptCopyName(file);
  const fh = await fsp.open(file, 'r').catch((e: unknown) => {
    throw ioError('open', file, e);
  });
  try {
    const buf = Buffer.alloc(Math.max(0, to - from));
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await fh.read(buf, done, buf.length - done, from + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    await atomicWriteFile(target, buf.subarray(0, done));
  } finally {
    await fh.close();
  }
  return target;
}

/** ftruncate + fsync. */
export async function truncateDurable(file: string, size: number): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(file, 'r+');
    await fh.truncate(size);
    await fh.sync();
  } catch (e) {
    throw ioError('truncate', file, e);
  } finally {
    await fh?.close();
  }
}

/** Replaces the segment's .idx and .tix with the given index, atomically each. */
export async function writeIndexFiles(segmentFile: string, index: SegmentIndex): Promise<{ idx: string; tix: string }> {
  const p = indexPathsFor(segmentFile);
  await atomicWriteFile(p.idx, index.idxFile());
  await atomicWriteFile(p.tix, index.tixFile());
  return p;
}

/** Moves a whole segment aside (rename to `.corrupt-<ms>`) and deletes its indexes; durable. */
export async function moveSegmentAside(segmentFile: string): Promise<string> {
  const target = corruptCopyName(segmentFile);
  try {
    await fsp.rename(segmentFile, target);
    const p = indexPathsFor(segmentFile);
    await fsp.rm(p.idx, { force: true });
    await fsp.rm(p.tix, { force: true });
  } catch (e) {
    throw ioError('move aside', segmentFile, e);
  }
  await fsyncDir(path.dirname(segmentFile));
  return target;
}
