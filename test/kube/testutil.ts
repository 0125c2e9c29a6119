import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './images.ts';

/** Real tools extracted by scripts/install-kube-tools.sh (npm pretest). Never the system kubectl. */
export const KUBECTL = path.join(REPO_ROOT, '.tools', 'bin', 'kubectl');
export const HELM = path.join(REPO_ROOT, '.tools', 'bin', 'helm');

export interface ToolResult { code: number; stdout: string; stderr: string }

/** Isolated tool environment: the stand-in kubeconfig, and private cache/config dirs for kubectl and helm. */
export function toolEnv(kubeconfig: string): NodeJS.ProcessEnv {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-tools-'));
  return {
    PATH: process.env.PATH, HOME: home, KUBECONFIG: kubeconfig,
    KUBECACHEDIR: path.join(home, 'kcache'),
    HELM_CACHE_HOME: path.join(home, 'helm-cache'), HELM_CONFIG_HOME: path.join(home, 'helm-config'), HELM_DATA_HOME: path.join(home, 'helm-data'),
  };
}

export function run(bin: string, args: string[], env: NodeJS.ProcessEnv, input?: string, timeoutMs = 90_000): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = execFile(bin, args, { env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) { child.stdin?.write(input); child.stdin?.end(); }
  });
}

export function kubectl(env: NodeJS.ProcessEnv, args: string[], input?: string): Promise<ToolResult> {
  return run(KUBECTL, ['--cache-dir', env.KUBECACHEDIR!, ...args], env, input);
}

export function helm(env: NodeJS.ProcessEnv, args: string[]): Promise<ToolResult> {
  return run(HELM, args, env);
}

/** Polls `cond` until it returns a truthy value; fails with `what` after a generous timeout (never a speed assertion). */
export async function waitFor<T>(what: string, cond: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A long-running tool process (e.g. `kubectl get -w`) whose output is collected; killed by pid in cleanup. */
export function startStreaming(bin: string, args: string[], env: NodeJS.ProcessEnv): { proc: ChildProcess; output: () => string } {
  const proc = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  return { proc, output: () => out };
}

export function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}
