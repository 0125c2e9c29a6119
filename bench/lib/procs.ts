/**
 * Child processes of a bench run: spawned with their output in a log file, tracked by pid, killed by pid when the
 * run ends (also on SIGINT/SIGTERM of the bench itself), plus free ports and condition waits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, createWriteStream, readFileSync } from 'node:fs';
import * as net from 'node:net';

/**
 * A port that is free now, chosen below the kernel's ephemeral range (32768+): a node restarted on its old port
 * must not find it taken by some process's outgoing connection (the machine is shared with other test runs).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, host, () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port found in 20000-31999 after 200 tries');
}

/** Polls `fn` until it returns a truthy value; a condition wait, bounded by timeoutMs. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 60_000, pollMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  logFile: string;
  exited: boolean;
  exit: Promise<number | null>;
  /** last bytes of the log file, for error messages */
  tail(n?: number): string;
}

const live = new Set<Child>();

function killAllSync(): void {
  for (const c of live) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
process.once('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAllSync();
    process.exit(130);
  });
}

export function spawnChild(name: string, cmd: string, args: string[], logFile: string, env: Record<string, string | undefined> = {}, cwd?: string): Child {
  const out = createWriteStream(logFile, { flags: 'a' });
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd });
  proc.stdout!.pipe(out);
  proc.stderr!.pipe(out);
  // a missing binary (ENOENT) is an 'error' event, not an exception: turn it into an exit with its message logged
  proc.once('error', (e) => {
    out.write(`spawn ${cmd} failed: ${String(e)}\n`);
    child.exited = true;
    live.delete(child);
  });
  const child: Child = {
    name,
    proc,
    pid: proc.pid ?? -1,
    logFile,
    exited: false,
    exit: new Promise((res) => {
      proc.once('exit', (code) => {
        child.exited = true;
        live.delete(child);
        res(code);
      });
      proc.once('error', () => res(null));
    }),
    tail: (n = 2000) => {
      try {
        const t = readFileSync(logFile, 'utf8');
        return t.slice(-n);
      } catch {
        return '';
      }
    },
  };
  live.add(child);
  return child;
}

/** sends `signal` to the child's pid and waits for its exit */
export async function stopChild(c: Child, signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 20_000): Promise<void> {
  if (c.exited || c.pid < 0) return;
  c.proc.kill(signal);
  const t = setTimeout(() => c.proc.kill('SIGKILL'), killAfterMs);
  await c.exit;
  clearTimeout(t);
}

export function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** true if `cmd` is on PATH */
export function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => {
    try {
      accessSync(`${d}/${cmd}`, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
