/**
 * `npm run bench:storage` — segment store throughput against the disk's own limits, measured in the same run:
 *   1. CRC32C: @node-rs/crc32 (native, SIMD) vs crc-32/crc32c (pure JS), 1 KiB and 16 KiB buffers
 *   2. dd write baseline: `dd if=/dev/zero of=<tmp> bs=1M count=512 conv=fdatasync`
 *   3. uncached sequential read baseline: dd read of that file after dropping it from the page cache
 *      (/proc/sys/vm/drop_caches if writable, else GNU dd `iflag=nocache count=0` per file)
 *   4. PartitionLog append, 16 KiB and 1 KiB payloads, 64 appenders in flight each awaiting `durable`,
 *      with a 5 ms group-commit window (interval 5 ms, and bytes 256 KiB with maxDelayMs 5)
 *   5. PartitionLog sequential read (uncached and hot), and the append ceiling without fsync waits
 * Every figure is printed as MB/s and as a ratio to the matching dd figure. Last line: JSON of all figures.
 * Env: BENCH_DIR (default os.tmpdir()), BENCH_APPEND_MB (default 512), BENCH_SECONDS (1 KiB runs, default 2).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import jsCrc32c from 'crc-32/crc32c';
import { PartitionLog } from '../broker/src/storage/partition-log.ts';
import { makeBatch } from '../broker/src/storage/testing.ts';
import { EntryType, type FlushPolicy } from '../broker/src/storage/types.ts';

const MB = 1e6;
const baseDir = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? tmpdir(), 'lance-bench-'));
const appendMB = Number(process.env.BENCH_APPEND_MB ?? 512);
const smallSeconds = Number(process.env.BENCH_SECONDS ?? 2);
const figures: Record<string, number | string> = {};

function fmt(n: number): string {
  return n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2);
}

function line(name: string, mbps: number, base?: number, baseName?: string): void {
  const ratio = base ? `  ${(mbps / base).toFixed(2)} × ${baseName}` : '';
  console.log(`${name.padEnd(58)} ${fmt(mbps).padStart(8)} MB/s${ratio}`);
}

// ------------------------------------------------------------------------------------------- 1. CRC32C
function crcBench(): void {
  console.log('# CRC32C (same buffers, ~0.4 s each)');
  for (const size of [1024, 16 * 1024]) {
    const buf = Buffer.alloc(size, 7);
    for (const [name, fn] of [
      ['@node-rs/crc32 crc32c (native)', (b: Buffer) => nativeCrc32c(b)],
      ['crc-32/crc32c (pure JS)', (b: Buffer) => jsCrc32c.buf(b)],
    ] as const) {
      if ((nativeCrc32c(buf) >>> 0) !== (jsCrc32c.buf(buf) >>> 0)) throw new Error('crc implementations disagree');
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < 400) for (let i = 0; i < 64; i++, n++) fn(buf);
      const mbps = (n * size) / MB / ((performance.now() - t0) / 1000);
      figures[`crc_${name.split(' ')[0]}_${size}`] = Math.round(mbps);
      line(`crc32c ${size === 1024 ? '1 KiB ' : '16 KiB'} ${name}`, mbps);
    }
  }
}

// ------------------------------------------------------------------------------------------- 2/3. dd
function parseDd(stderr: string): number {
  // "536870912 bytes (537 MB, 512 MiB) copied, 0.61 s, 880 MB/s"
  const m = /(\d+) bytes .* copied, ([\d.]+) s/.exec(stderr);
  if (!m) throw new Error(`cannot parse dd output: ${stderr}`);
  return Number(m[1]) / MB / Number(m[2]);
}

function dropCache(files: string[]): string {
  try {
    execFileSync('sync');
    fs.writeFileSync('/proc/sys/vm/drop_caches', '1');
    return 'drop_caches';
  } catch {
    for (const f of files) spawnSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
    return 'dd iflag=nocache';
  }
}

function ddBaselines(label: string): { write: number; read: number; readHow: string } {
  const f = path.join(baseDir, 'dd.bin');
  const w = spawnSync('dd', ['if=/dev/zero', `of=${f}`, 'bs=1M', 'count=512', 'conv=fdatasync'], { encoding: 'utf8' });
  const write = parseDd(w.stderr);
  const readHow = dropCache([f]);
  const r = spawnSync('dd', [`if=${f}`, 'of=/dev/null', 'bs=1M'], { encoding: 'utf8' });
  const read = parseDd(r.stderr);
  fs.rmSync(f);
  console.log(`# baselines (dd, ${label})`);
  line('dd write bs=1M count=512 conv=fdatasync', write);
  line(`dd sequential read, uncached (${readHow})`, read);
  figures[`dd_write_fdatasync_${label}`] = Math.round(write);
  figures[`dd_read_uncached_${label}`] = Math.round(read);
  figures.dd_read_uncached_method = readHow;
  return { write, read, readHow };
}

// ------------------------------------------------------------------------------------------- 4. append
async function appendBench(name: string, payloadBytes: number, flush: FlushPolicy, inFlight: number, stop: { bytes?: number; seconds?: number }): Promise<{ mbps: number; dir: string; fsyncs: number }> {
  const dir = path.join(baseDir, name.replace(/[^a-z0-9]+/gi, '_'));
  const log = await PartitionLog.open(dir, { flush });
  // The log copies entries into its write buffer: one payload can be appended many times.
  const payload = makeBatch(1, Date.now(), payloadBytes - 61);
  const entry = [{ type: EntryType.DATA, term: 1, offsetCount: 1, maxTimestamp: Date.now(), payload }];
  let acked = 0;
  let fsyncs = 0;
  let lastDurable: Promise<void> | null = null;
  const deadline = stop.seconds ? performance.now() + stop.seconds * 1000 : Infinity;
  const t0 = performance.now();
  let issued = 0;
  const maxEntries = stop.bytes ? Math.ceil(stop.bytes / payloadBytes) : Infinity;
  async function appender(): Promise<void> {
    while (issued < maxEntries && performance.now() < deadline) {
      issued++;
      const r = log.append(entry);
      if (r.durable !== lastDurable) {
        lastDurable = r.durable;
        fsyncs++;
      }
      await r.durable;
      acked += payloadBytes;
    }
  }
  await Promise.all(Array.from({ length: inFlight }, appender));
  const secs = (performance.now() - t0) / 1000;
  await log.close();
  return { mbps: acked / MB / secs, dir, fsyncs };
}

/** The store's own ceiling: appends in a tight loop (encode, CRC, copy, page-cache write), fsync not timed. */
async function ceilingBench(payloadBytes: number, totalBytes: number): Promise<number> {
  const dir = path.join(baseDir, `ceiling_${payloadBytes}`);
  const log = await PartitionLog.open(dir, { flush: { mode: 'interval', ms: 1000 } });
  const payload = makeBatch(1, Date.now(), payloadBytes - 61);
  const entry = [{ type: EntryType.DATA, term: 1, offsetCount: 1, maxTimestamp: Date.now(), payload }];
  const n = Math.ceil(totalBytes / payloadBytes);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) log.append(entry);
  await log.read(0, 1); // forces the last staged bytes into the file
  const secs = (performance.now() - t0) / 1000;
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return (n * payloadBytes) / MB / secs;
}

// ------------------------------------------------------------------------------------------- 5. read
async function readBench(dir: string): Promise<{ cold: number; hot: number }> {
  const segs = fs.readdirSync(dir).filter((n) => n.endsWith('.lnc')).map((n) => path.join(dir, n));
  const once = async (): Promise<number> => {
    const log = await PartitionLog.open(dir, {});
    let off = log.logStartOffset;
    let bytes = 0;
    const t0 = performance.now();
    while (off < log.nextOffset) {
      const es = await log.read(off, 1024 * 1024);
      for (const e of es) bytes += e.payload.length;
      const last = es[es.length - 1]!;
      off = last.firstOffset + last.offsetCount;
    }
    const secs = (performance.now() - t0) / 1000;
    await log.close();
    return bytes / MB / secs;
  };
  dropCache(segs);
  const cold = await once();
  const hot = await once();
  return { cold, hot };
}

async function main(): Promise<void> {
  console.log(`lance storage bench — dir ${baseDir}, node ${process.version}`);
  crcBench();
  // The machine is shared: dd runs before and after the log runs, and ratios use the mean of the two.
  const dd0 = ddBaselines('before');
  console.log(`# PartitionLog append (payload MB/s acknowledged after fsync; ${appendMB} MB per 16 KiB run, ${smallSeconds} s per 1 KiB run)`);
  const runs: [string, number, FlushPolicy, number, { bytes?: number; seconds?: number }][] = [
    ['append 16 KiB, interval 5 ms, 64 in flight', 16384, { mode: 'interval', ms: 5 }, 64, { bytes: appendMB * MB }],
    ['append 16 KiB, bytes 256 KiB / max 5 ms, 64 in flight', 16384, { mode: 'bytes', bytes: 256 << 10, maxDelayMs: 5 }, 64, { bytes: appendMB * MB }],
    ['append 16 KiB, interval 5 ms, 256 in flight', 16384, { mode: 'interval', ms: 5 }, 256, { bytes: appendMB * MB }],
    ['append 1 KiB, interval 5 ms, 64 in flight', 1024, { mode: 'interval', ms: 5 }, 64, { seconds: smallSeconds }],
    ['append 1 KiB, bytes 64 KiB / max 5 ms, 64 in flight', 1024, { mode: 'bytes', bytes: 64 << 10, maxDelayMs: 5 }, 64, { seconds: smallSeconds }],
    ['append 1 KiB, interval 5 ms, 1024 in flight', 1024, { mode: 'interval', ms: 5 }, 1024, { seconds: smallSeconds }],
  ];
  let readDir = '';
  const results: [string, number, number][] = [];
  for (const [name, size, flush, inFlight, stop] of runs) {
    const r = await appendBench(name, size, flush, inFlight, stop);
    results.push([`${name} (${r.fsyncs} fsyncs)`, r.mbps, 0]);
    console.log(`  ${name}: ${fmt(r.mbps)} MB/s`);
    if (!readDir) readDir = r.dir;
    else fs.rmSync(r.dir, { recursive: true, force: true });
  }
  const rd = await readBench(readDir);
  const ceil16 = await ceilingBench(16384, 256 * MB);
  const ceil1 = await ceilingBench(1024, 64 * MB);
  const dd1 = ddBaselines('after');
  const dd = { write: (dd0.write + dd1.write) / 2, read: (dd0.read + dd1.read) / 2, readHow: dd0.readHow };
  figures.dd_write_fdatasync = Math.round(dd.write);
  figures.dd_read_uncached = Math.round(dd.read);
  console.log(`# summary: ratios to the mean of dd before/after (write ${fmt(dd.write)} MB/s, uncached read ${fmt(dd.read)} MB/s)`);
  for (const [name, mbps] of results) {
    line(name, mbps, dd.write, 'dd fdatasync');
    const key = name.replace(/ \(\d+ fsyncs\)$/, '');
    figures[key] = Math.round(mbps);
    figures[`${key} ratio`] = Number((mbps / dd.write).toFixed(3));
  }
  line('append ceiling 16 KiB (no fsync wait: encode+CRC+page cache)', ceil16, dd.write, 'dd fdatasync');
  line('append ceiling 1 KiB (no fsync wait: encode+CRC+page cache)', ceil1, dd.write, 'dd fdatasync');
  figures.append_ceiling_16k = Math.round(ceil16);
  figures.append_ceiling_1k = Math.round(ceil1);
  line(`read, uncached (${dd.readHow})`, rd.cold, dd.read, 'dd uncached read');
  line('read, page cache hot', rd.hot, dd.read, 'dd uncached read');
  figures.read_uncached = Math.round(rd.cold);
  figures.read_hot = Math.round(rd.hot);
  figures.read_uncached_ratio = Number((rd.cold / dd.read).toFixed(3));
  console.log(JSON.stringify(figures));
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(baseDir, { recursive: true, force: true }));
