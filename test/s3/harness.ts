/**
 * Starts a real S3 endpoint for tests: s3rver@3.7.1 in a child process (`node --openssl-legacy-provider`, else
 * ListObjectsV2 continuation tokens answer 500), on a free port, with its own temp dir and bucket(s).
 * Credentials are s3rver's fixed S3RVER/S3RVER; path-style addressing is required.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ObjectStoreConfig } from '../../broker/src/tiering/config.ts';
import { validateObjectStoreConfig } from '../../broker/src/tiering/config.ts';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 's3rver-child.mjs');

export interface S3rverHandle {
  endpoint: string;
  port: number;
  bucket: string;
  /** s3rver's data dir */
  dir: string;
  pid: number;
  /** what s3rver wrote to stderr (crash reports) */
  stderr(): string;
  /** false once the process has exited */
  alive(): boolean;
  /** kills the process by pid and removes its dir */
  stop(): Promise<void>;
}

export async function startS3rver(opts: { bucket?: string; extraBuckets?: string[] } = {}): Promise<S3rverHandle> {
  const bucket = opts.bucket ?? 'lance-test';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lance-s3rver-'));
  const child: ChildProcess = spawn(process.execPath, ['--openssl-legacy-provider', CHILD, dir, bucket, ...(opts.extraBuckets ?? [])], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const listening = new Promise<number>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      try {
        resolve((JSON.parse(out.slice(0, nl)) as { port: number }).port);
      } catch (e) {
        reject(new Error(`s3rver child printed ${JSON.stringify(out)}: ${String(e)}`));
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code, sig) => reject(new Error(`s3rver child exited (${code ?? sig}) before listening: ${stderr}`)));
    child.once('error', reject);
  });
  // generous: only a broken install takes this long (a loaded box starts s3rver in a few seconds at worst)
  let startTimer: NodeJS.Timeout | undefined;
  const startTimeout = new Promise<never>((_, reject) => {
    startTimer = setTimeout(() => reject(new Error(`s3rver child did not report its port within 60 s: ${stderr}`)), 60_000);
  });
  let port: number;
  try {
    port = await Promise.race([listening, startTimeout]);
  } catch (e) {
    // don't leave a half-started child or its dir behind
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  } finally {
    clearTimeout(startTimer);
  }
  const pid = child.pid!;
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    bucket,
    dir,
    pid,
    stderr: () => stderr,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        process.kill(pid, 'SIGKILL');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An s3 objectStore config for an s3rver endpoint (tests lower the sizes and timeouts through `overrides`). */
export function s3rverConfig(endpoint: string, bucket: string, overrides: Partial<ObjectStoreConfig> = {}): ObjectStoreConfig {
  return validateObjectStoreConfig({
    backend: 's3',
    bucket,
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    // s3rver's Delimiter listing misses common prefixes whose keys are all 2+ levels deeper (it does not descend
    // into them); client-side roll-up is exact.
    listDelimiter: 'client',
    ...overrides,
  });
}
