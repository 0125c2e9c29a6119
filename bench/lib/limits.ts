/**
 * Physical limits, measured at the start of a run on the same disk and loopback the systems use:
 * dd sequential write with conv=fdatasync, a 4 KiB append + fdatasync loop, loopback TCP between two Node processes.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { LatencyHistogram } from './hist.ts';
import type { Limits } from './report.ts';

export function parseDd(stderr: string): number {
  // "536870912 bytes (537 MB, 512 MiB) copied, 0.61 s, 880 MB/s"
  const m = /(\d+) bytes .* copied, ([\d.]+) s/.exec(stderr);
  if (!m) throw new Error(`cannot parse dd output: ${stderr}`);
  return Number(m[1]) / 1e6 / Number(m[2]);
}

export function ddFdatasyncMBps(dir: string, mb: number): number {
  const f = path.join(dir, 'dd.bin');
  const r = spawnSync('dd', ['if=/dev/zero', `of=${f}`, 'bs=1M', `count=${mb}`, 'conv=fdatasync'], { encoding: 'utf8' });
  fs.rmSync(f, { force: true });
  return parseDd(r.stderr);
}

/** 4 KiB appends, each followed by fdatasync, for `ms`: the disk's synchronous commit rate (group commit's raison d'être) */
export function fdatasync4k(dir: string, ms: number): { opsPerSec: number; p50Ms: number } {
  const f = path.join(dir, 'fsync4k.bin');
  const fd = fs.openSync(f, 'w');
  const buf = Buffer.alloc(4096, 0x5a);
  const h = new LatencyHistogram();
  let n = 0;
  const t0 = performance.now();
  try {
    while (performance.now() - t0 < ms) {
      const t = performance.now();
      fs.writeSync(fd, buf, 0, buf.length, n * 4096);
      fs.fdatasyncSync(fd);
      h.recordMs(performance.now() - t);
      n++;
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(f, { force: true });
  }
  return { opsPerSec: n / ((performance.now() - t0) / 1000), p50Ms: h.percentileMs(50) };
}

const SINK = `
const net = require('node:net');
let bytes = 0, t0 = 0;
const srv = net.createServer((s) => {
  s.on('data', (d) => { if (!t0) t0 = performance.now(); bytes += d.length; });
  s.on('end', () => { process.stdout.write(JSON.stringify({ bytes, ms: performance.now() - t0 }) + '\\n'); s.end(); srv.close(); });
});
srv.listen(0, '127.0.0.1', () => process.stdout.write(String(srv.address().port) + '\\n'));
`;

/** bytes/s from this process to a child Node process over 127.0.0.1, 64 KiB writes, measured at the receiver */
export async function loopbackTcpMBps(ms: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', SINK], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const lines: string[] = [];
    let buf = '';
    const waiters: Array<() => void> = [];
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        waiters.splice(0).forEach((w) => w());
      }
    });
    const nextLine = async (): Promise<string> => {
      while (lines.length === 0) await new Promise<void>((r) => waiters.push(r));
      return lines.shift()!;
    };
    const port = Number(await nextLine());
    const sock = net.connect({ host: '127.0.0.1', port, noDelay: true });
    await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
    const chunk = Buffer.alloc(64 * 1024, 1);
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      if (!sock.write(chunk)) await new Promise<void>((r) => sock.once('drain', r));
    }
    sock.end();
    const res = JSON.parse(await nextLine()) as { bytes: number; ms: number };
    sock.destroy();
    return res.bytes / 1e6 / (res.ms / 1000);
  } finally {
    child.kill('SIGKILL');
  }
}

export async function measureLimits(dir: string, quick: boolean): Promise<Limits> {
  const dd = ddFdatasyncMBps(dir, quick ? 256 : 1024);
  const fs4k = fdatasync4k(dir, quick ? 1000 : 3000);
  const tcp = await loopbackTcpMBps(quick ? 1000 : 3000);
  return { ddFdatasyncMBps: dd, fdatasync4kOpsPerSec: fs4k.opsPerSec, fdatasync4kP50Ms: fs4k.p50Ms, loopbackTcpMBps: tcp };
}
