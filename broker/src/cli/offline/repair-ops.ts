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

/**
 * Copies bytes [from, to) of `file` to a new `.corrupt-<ms>` file in 1 MiB steps (never the whole range in memory):
 * temp → fsync → rename → fsync(dir). Returns its path.
 */
export async function copyAside(file: string, from: number, to: number): Promise<string> {
  const target = corruptCopyName(file);
  const tmp = path.join(path.dirname(file), `.${path.basename(target)}.tmp-${process.pid}`);
  let src: fsp.FileHandle | undefined;
  let dst: fsp.FileHandle | undefined;
  try {
    src = await fsp.open(file, 'r');
    dst = await fsp.open(tmp, 'w', 0o644);
    const buf = Buffer.allocUnsafe(1 << 20);
    let pos = from;
    while (pos < to) {
      const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, to - pos), pos);
      if (bytesRead === 0) break;
      await dst.write(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    await dst.sync();
    await dst.close();
    dst = undefined;
    await fsp.rename(tmp, target);
  } catch (e) {
    await dst?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw ioError('copy aside', file, e);
  } finally {
    await src?.close().catch(() => undefined);
  }
  await fsyncDir(path.dirname(file));
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
