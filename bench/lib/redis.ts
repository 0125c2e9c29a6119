/**
 * Redis Streams peer: Debian's redis-server 7 with `appendonly yes` and `appendfsync always` (fsync before the
 * reply, group-committed per event-loop turn) or `everysec`. Automatic AOF rewrites are off (a fork + full rewrite
 * mid-measurement would measure the rewrite; Lance's log has no such background compaction either). The client is a lean RESP pipeline written here:
 * one unit = `recordsPerUnit` XADD commands in one socket write, awaited together (the same batching the Lance
 * driver gets from a RecordBatch).
 */
import { mkdirSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Driver } from './driver.ts';
import { freePort, spawnChild, stopChild, tcpOpen, waitFor, type Child } from './procs.ts';

export class RedisSystem {
  private constructor(readonly child: Child, readonly port: number) {}

  static async start(dir: string, appendfsync: 'always' | 'everysec'): Promise<RedisSystem> {
    const port = await freePort();
    const d = path.join(dir, `redis-${appendfsync}`);
    mkdirSync(d, { recursive: true });
    const child = spawnChild(`redis-${appendfsync}`, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', d, '--save', '', '--appendonly', 'yes', '--appendfsync', appendfsync, '--auto-aof-rewrite-percentage', '0', '--daemonize', 'no'], path.join(dir, `redis-${appendfsync}.log`));
    await waitFor('redis-server port', async () => {
      if (child.exited) throw new Error(`redis-server exited: ${child.tail()}`);
      return tcpOpen('127.0.0.1', port);
    }, 30_000);
    return new RedisSystem(child, port);
  }

  async stop(): Promise<void> {
    await stopChild(this.child, 'SIGTERM');
  }
}

export function respCommand(args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/**
 * Counts complete top-level RESP2 replies (simple string, error, integer, bulk string) at the start of `buf`.
 * Returns how many, the bytes they span, and the first error text among them. XADD answers only these types.
 */
export function scanReplies(buf: Buffer, max = Infinity): { count: number; bytes: number; error?: string } {
  let pos = 0;
  let count = 0;
  let error: string | undefined;
  while (pos < buf.length && count < max) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) break;
    const t = buf[pos];
    if (t === 0x24 /* $ */) {
      const len = Number(buf.toString('latin1', pos + 1, eol));
      const end = len < 0 ? eol + 2 : eol + 2 + len + 2;
      if (end > buf.length) break;
      pos = end;
    } else {
      if (t === 0x2d /* - */) error ??= buf.toString('utf8', pos + 1, eol);
      else if (t !== 0x2b && t !== 0x3a) throw new Error(`unexpected RESP type byte 0x${(t ?? 0).toString(16)} at ${pos}`);
      pos = eol + 2;
    }
    count++;
  }
  return { count, bytes: pos, error };
}

class RespConn {
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiting: Array<{ remaining: number; error?: string; resolve: () => void; reject: (e: Error) => void }> = [];
  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => this.onData(d));
    const fail = (e: Error): void => {
      for (const w of this.waiting.splice(0)) w.reject(e);
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('redis connection closed')));
  }

  static connect(port: number): Promise<RespConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
      s.once('connect', () => resolve(new RespConn(s)));
      s.once('error', reject);
    });
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.waiting.length) {
      const w = this.waiting[0]!;
      const r = scanReplies(this.buf, w.remaining);
      if (r.count === 0) return;
      this.buf = this.buf.subarray(r.bytes);
      w.remaining -= r.count;
      w.error ??= r.error;
      if (w.remaining > 0) return;
      this.waiting.shift();
      if (w.error) w.reject(new Error(`redis: ${w.error}`));
      else w.resolve();
    }
  }

  /** writes pre-encoded commands; resolves when `replies` replies have arrived */
  send(commands: Buffer, replies: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ remaining: replies, resolve, reject });
      this.sock.write(commands);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

/** keys `${prefix}:${i}`; XADD ... MAXLEN ~ (64 MB of records) keeps memory bounded like a retention limit */
export async function redisDriver(sys: RedisSystem, prefix: string, keys: number, recordBytes: number, recordsPerUnit: number, connsPerKey = 2): Promise<Driver> {
  const payload = Buffer.alloc(recordBytes, 0x61);
  const slots: Array<{ conn: RespConn; frame: Buffer }> = [];
  for (let c = 0; c < connsPerKey; c++) {
    for (let k = 0; k < keys; k++) {
      // trimmed to ~64 MB per key (like a retention limit): memory stays bounded at every record size
      const one = respCommand(['XADD', `${prefix}:${k}`, 'MAXLEN', '~', String(Math.max(1000, Math.floor(64e6 / recordBytes))), '*', 'v', payload]);
      slots.push({ conn: await RespConn.connect(sys.port), frame: Buffer.concat(Array.from({ length: recordsPerUnit }, () => one)) });
    }
  }
  let rr = 0;
  return {
    recordBytes,
    recordsPerUnit,
    send() {
      const s = slots[rr++ % slots.length]!;
      return s.conn.send(s.frame, recordsPerUnit);
    },
    async close() {
      const c = await RespConn.connect(sys.port);
      await c.send(respCommand(['DEL', ...Array.from({ length: keys }, (_, k) => `${prefix}:${k}`)]), 1);
      c.close();
      for (const s of slots) s.conn.close();
    },
  };
}
