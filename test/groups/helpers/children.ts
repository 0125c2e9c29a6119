import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export interface ConsumerChild {
  proc: ChildProcess;
  pid: number;
  lines: string[];
  exited: Promise<number | null>;
}

const all = new Set<ChildProcess>();

/** Starts a kafkajs group consumer process (helpers/consumer-child.mjs). */
export function startConsumer(bootstrap: string, group: string, topic: string): ConsumerChild {
  const proc = spawn(process.execPath, [path.join(HERE, 'consumer-child.mjs'), bootstrap, group, topic], { cwd: path.join(HERE, '../../..'), stdio: ['ignore', 'pipe', 'pipe'] });
  all.add(proc);
  const lines: string[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  proc.stderr!.on('data', (d: Buffer) => lines.push(`STDERR ${d.toString()}`));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => {
    all.delete(proc);
    res(code);
  }));
  return { proc, pid: proc.pid!, lines, exited };
}

/** Kills every child still running (afterAll), each by its own pid. */
export function killConsumers(): void {
  for (const p of all) p.kill('SIGKILL');
}
