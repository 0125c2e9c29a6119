import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export interface LanceProcess {
  proc: ChildProcess;
  pid: number;
  kafkaPort: number;
  adminPort: number;
  dataDir: string;
  bootstrap: string;
  /** everything the broker wrote to stdout/stderr (pino JSON lines), for failure messages */
  output(): string;
  /** resident set size of the broker process, from /proc */
  rssBytes(): number;
  /** sends `signal` and waits for exit; returns the exit code (null if killed by a signal) */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  dataDir?: string;
  readOnly?: boolean;
  /** advertise this port instead of the bound one (capture proxy in front of the broker) */
  advertisedPort?: number;
  kafkaPort?: number;
  adminPort?: number;
  env?: Record<string, string>;
  extraArgs?: string[];
}

/** Ports below the ephemeral range: a stopped broker restarts on its own ports (see test/ports.ts). */
import { freePort } from '../../ports.ts';
export { freePort };

export function tempDataDir(prefix = 'lance-kafka-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Polls `check` until it returns true (waiting on a condition, never asserting on time). */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (e) {
      lastErr = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const r = await fetch(url);
    return r.status === 200;
  } catch {
    return false;
  }
}

/** Spawns the real `lance` server (`node bin/lance.js --standalone ...`) and waits until /health/ready is 200. */
export async function startLance(opts: StartOptions = {}): Promise<LanceProcess> {
  const dataDir = opts.dataDir ?? tempDataDir();
  const kafkaPort = opts.kafkaPort ?? (await freePort());
  const adminPort = opts.adminPort ?? (await freePort());
  const args = [
    path.join(ROOT, 'bin/lance.js'),
    '--standalone',
    '--data-dir',
    dataDir,
    '--host',
    '127.0.0.1',
    '--advertised-host',
    '127.0.0.1',
    '--kafka-port',
    String(kafkaPort),
    '--admin-port',
    String(adminPort),
    ...(opts.readOnly ? ['--read-only'] : []),
    ...(opts.extraArgs ?? []),
  ];
  const env: Record<string, string> = { ...(process.env as Record<string, string>), LANCE_LOG_LEVEL: 'warn', ...(opts.env ?? {}) };
  delete env['VITEST'];
  delete env['VITEST_POOL_ID'];
  delete env['VITEST_WORKER_ID'];
  if (opts.advertisedPort !== undefined) env['LANCE_ADVERTISED_PORT'] = String(opts.advertisedPort);
  const proc = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.length > 1_000_000) out = out.slice(-500_000);
  });
  proc.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  let exited: number | null | undefined;
  const exitPromise = new Promise<number | null>((res) =>
    proc.once('exit', (code) => {
      exited = code;
      res(code);
    }),
  );
  const pid = proc.pid!;
  try {
    await waitFor(`lance to be ready on admin port ${adminPort}`, async () => {
      if (exited !== undefined) throw new Error(`lance exited with ${exited}: ${out.slice(-2000)}`);
      return httpOk(`http://127.0.0.1:${adminPort}/health/ready`);
    });
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  return {
    proc,
    pid,
    kafkaPort,
    adminPort,
    dataDir,
    bootstrap: `127.0.0.1:${kafkaPort}`,
    output: () => out,
    rssBytes: () => {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      return m ? Number(m[1]) * 1024 : 0;
    },
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (exited !== undefined) return exited;
      proc.kill(signal);
      return exitPromise;
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
