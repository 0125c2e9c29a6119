import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ioError } from './errors.ts';

/** fsync a directory so a rename or create inside it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch (e) {
    throw ioError('fsync dir', dir, e);
  } finally {
    await fh?.close();
  }
}

/**
 * Crash-safe file replace: write temp → fsync → rename → fsync(dir).
 * After a crash the file holds either the old or the new content, never a mix.
 */
export async function atomicWriteFile(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${Date.now()}`);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'w', 0o644);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, file);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw ioError('atomic write', file, e);
  }
  await fsyncDir(dir);
}

export async function atomicWriteJson(file: string, value: unknown): Promise<void> {
  await atomicWriteFile(file, JSON.stringify(value, null, 2) + '\n');
}

/** mkdir -p, then fsync the parent so the new directory entry survives a crash. */
export async function mkdirDurable(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (e) {
    throw ioError('mkdir', dir, e);
  }
  await fsyncDir(path.dirname(path.resolve(dir)));
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}
