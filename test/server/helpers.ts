/**
 * Spawns the REAL `lance` server (node bin/lance.js) and `lnc` as child processes. Ports are chosen by the OS
 * (--kafka-port 0 --admin-port 0) and read back from the "lance ready" log line; processes are killed by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LANCE = fileURLToPath(new URL('../../bin/lance.js', import.meta.url));
const LNC = fileURLToPath(new URL('../../bin/lnc.js', import.meta.url));

/** generous: tsx startup on a loaded 2-core box */
export const START_TIMEOUT_MS = 60_000;

export interface LanceProcess {
  proc: ChildProcess;
  pid: number;
  kafkaPort: number;
  adminPort: number;
  admin: string;
  /** stdout lines so far (pino JSON) */
  logs: string[];
  stderr(): string;
  /** resolves with the exit code (or the signal name) */
  exited: Promise<number | string>;
}

export interface ExitedLance {
  code: number | string;
  stdout: string;
  stderr: string;
}

const live = new Set<ChildProcess>();

/** Kill every process these helpers started that is still running (afterEach/afterAll). */
export function killAll(): void {
  for (const p of live) {
    if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  live.clear();
}

function spawnLance(args: string[], env: Record<string, string> = {}): { proc: ChildProcess; out: string[]; err: string[]; exited: Promise<number | string> } {
  const proc = spawn(process.execPath, [LANCE, ...args], {
    cwd: ROOT,
    env: { ...process.env, VITEST: undefined, LANCE_LOG_LEVEL: undefined, ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  const out: string[] = [];
  const err: string[] = [];
  let partial = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    out.push(...lines);
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => err.push(d));
  const exited = new Promise<number | string>((resolve) => {
    proc.on('exit', (code, signal) => {
      if (partial) out.push(partial);
      resolve(code ?? signal ?? -1);
    });
  });
  return { proc, out, err, exited };
}

/** Starts a broker and waits for its "lance ready" line. */
export function startLance(dataDir: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<LanceProcess> {
  return startLanceWith(['--standalone', '--data-dir', dataDir, '--host', '127.0.0.1', '--kafka-port', '0', '--admin-port', '0', ...extraArgs], env);
}

/** Starts `lance <args>` exactly as given and waits for its "lance ready" line. */
export async function startLanceWith(args: string[], env: Record<string, string> = {}): Promise<LanceProcess> {
  const { proc, out, err, exited } = spawnLance(args, env);
  const ready = await new Promise<{ kafkaPort: number; adminPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lance not ready within ${START_TIMEOUT_MS} ms; stderr: ${err.join('')}`)), START_TIMEOUT_MS);
    const check = (): void => {
      for (const line of out) {
        if (!line.includes('"lance ready"')) continue;
        const j = JSON.parse(line) as { kafkaPort: number; adminPort: number };
        clearTimeout(timer);
        resolve({ kafkaPort: j.kafkaPort, adminPort: j.adminPort });
        return;
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`lance exited (${code}) before ready; stderr: ${err.join('')}`));
    });
  });
  return {
    proc, pid: proc.pid!, ...ready, admin: `127.0.0.1:${ready.adminPort}`, logs: out, stderr: () => err.join(''), exited,
  };
}

/** Runs `lance` expecting it to exit by itself (config errors, --help). */
export async function runLanceToExit(args: string[], env: Record<string, string> = {}): Promise<ExitedLance> {
  const { out, err, exited } = spawnLance(args, env);
  const code = await exited;
  return { code, stdout: out.join('\n'), stderr: err.join('') };
}

export interface LncResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function lnc(args: string[], stdin?: string): Promise<LncResult> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [LNC, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(proc);
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    proc.on('close', (code) => {
      live.delete(proc);
      resolve({ code, stdout, stderr });
    });
    proc.stdin.end(stdin ?? '');
  });
}

/** GET against the admin API, returning status and parsed body (JSON when possible). */
export async function httpGet(base: string, path: string): Promise<{ status: number; body: unknown; text: string }> {
  const res = await fetch(`http://${base}${path}`);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* metrics are text */
  }
  return { status: res.status, body, text };
}
