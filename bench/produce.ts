/**
 * `npm run bench:produce`: produce throughput of a single real broker process (acks=1, 1 KiB records) driven by a
 * lean load generator that speaks the Kafka protocol with Lance's own codec (pipelined Produce v9 requests carrying
 * pre-built RecordBatch v2 bytes, so the generator costs almost no CPU). Prints records/s and MB/s next to the
 * disk's sequential `dd ... conv=fdatasync` MB/s measured in the same run, and their ratio.
 *
 * Env knobs: BENCH_SECONDS (10), BENCH_CONNECTIONS (4), BENCH_INFLIGHT (8 per connection), BENCH_BATCH_RECORDS (64),
 * BENCH_PARTITIONS (4), BENCH_RECORD_BYTES (1024), BENCH_DD_MB (512).
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { KafkaWireClient } from '../broker/src/kafka/client.ts';
import type { CreateTopicsResponse, ListOffsetsResponse, ProduceResponse } from '../broker/src/kafka/protocol/messages.ts';
import { buildRecordBatch } from '../broker/src/kafka/records.ts';
import { startLance, tempDataDir } from '../test/kafka/helpers/broker.ts';

const env = (k: string, d: number): number => (process.env[k] ? Number(process.env[k]) : d);
const SECONDS = env('BENCH_SECONDS', 10);
const CONNECTIONS = env('BENCH_CONNECTIONS', 4);
const INFLIGHT = env('BENCH_INFLIGHT', 8);
const BATCH_RECORDS = env('BENCH_BATCH_RECORDS', 64);
const PARTITIONS = env('BENCH_PARTITIONS', 4);
const RECORD_BYTES = env('BENCH_RECORD_BYTES', 1024);
const DD_MB = env('BENCH_DD_MB', 512);

/** Sequential write + fdatasync throughput of the data dir's disk, as the storage bench measures it. */
function ddMBps(dir: string): number {
  const file = path.join(dir, 'dd.bin');
  // dd reports its figure on stderr
  const res = execFileSync('sh', ['-c', `dd if=/dev/zero of='${file}' bs=1M count=${DD_MB} conv=fdatasync 2>&1`], { encoding: 'utf8' });
  rmSync(file, { force: true });
  const m = /(\d+) bytes .* copied, ([\d.]+) s/.exec(res);
  if (!m) throw new Error(`cannot parse dd output: ${res}`);
  return Number(m[1]) / Number(m[2]) / 1e6;
}

async function main(): Promise<void> {
  const dataDir = tempDataDir('lance-bench-produce-');
  const lance = await startLance({ dataDir, env: { LANCE_LOG_LEVEL: 'warn' } });
  try {
    const admin = await KafkaWireClient.connect('127.0.0.1', lance.kafkaPort, 'bench-admin');
    const ct = await admin.request<CreateTopicsResponse>(19, 4, {
      topics: [{ name: 'bench', numPartitions: PARTITIONS, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    if (ct.topics[0]!.errorCode !== 0) throw new Error(`create topic failed: ${ct.topics[0]!.errorMessage}`);

    const value = Buffer.alloc(RECORD_BYTES, 0x61);
    const batch = buildRecordBatch(Array.from({ length: BATCH_RECORDS }, (_, i) => ({ key: null, value, headers: [], timestamp: 1_700_000_000_000 + i })));
    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => KafkaWireClient.connect('127.0.0.1', lance.kafkaPort, `bench-${i}`)));

    let acked = 0;
    let errors = 0;
    let measuring = false;
    let measuredRecords = 0;
    let stop = false;
    const loop = async (c: KafkaWireClient, partition: number): Promise<void> => {
      const body = { transactionalId: null, acks: 1, timeoutMs: 30_000, topicData: [{ name: 'bench', partitionData: [{ index: partition, records: batch }] }] };
      while (!stop) {
        const r = await c.request<ProduceResponse>(0, 9, body);
        const pr = r.responses[0]!.partitionResponses[0]!;
        if (pr.errorCode !== 0) {
          errors++;
          continue;
        }
        acked += BATCH_RECORDS;
        if (measuring) measuredRecords += BATCH_RECORDS;
      }
    };
    const loops: Promise<void>[] = [];
    let p = 0;
    for (const c of clients) for (let i = 0; i < INFLIGHT; i++) loops.push(loop(c, p++ % PARTITIONS));

    await new Promise((r) => setTimeout(r, 2000)); // warm-up
    measuring = true;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    measuring = false;
    const elapsed = (performance.now() - t0) / 1000;
    stop = true;
    await Promise.all(loops);

    // the broker really has what it acknowledged
    const lo = await admin.request<ListOffsetsResponse>(2, 5, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{ name: 'bench', partitions: Array.from({ length: PARTITIONS }, (_, i) => ({ partitionIndex: i, currentLeaderEpoch: -1, timestamp: -1 })) }],
    });
    const logEnd = lo.topics[0]!.partitions.reduce((n, x) => n + x.offset, 0);
    for (const c of clients) c.close();
    admin.close();

    const recordsPerSec = measuredRecords / elapsed;
    const mbPerSec = (recordsPerSec * RECORD_BYTES) / 1e6;
    const wireMBps = (recordsPerSec / BATCH_RECORDS) * batch.length / 1e6;
    const dd = ddMBps(dataDir);
    const summary = {
      recordsPerSec: Math.round(recordsPerSec),
      payloadMBps: Number(mbPerSec.toFixed(1)),
      batchMBps: Number(wireMBps.toFixed(1)),
      ddFdatasyncMBps: Number(dd.toFixed(1)),
      ratioToDd: Number((wireMBps / dd).toFixed(3)),
      acks: 1,
      recordBytes: RECORD_BYTES,
      batchRecords: BATCH_RECORDS,
      connections: CONNECTIONS,
      inFlightPerConnection: INFLIGHT,
      partitions: PARTITIONS,
      seconds: Number(elapsed.toFixed(1)),
      errors,
      ackedTotal: acked,
      logEndOffsetsTotal: logEnd,
      // figures are only comparable on a quiet machine: report how busy it was
      loadAverage1m: Number(loadavg()[0]!.toFixed(1)),
      cpus: cpus().length,
    };
    console.log(`produce (acks=1, ${RECORD_BYTES} B records, ${BATCH_RECORDS}/batch, ${CONNECTIONS}x${INFLIGHT} in flight, ${PARTITIONS} partitions):`);
    console.log(`  ${summary.recordsPerSec} records/s, ${summary.payloadMBps} MB/s payload (${summary.batchMBps} MB/s of batches)`);
    console.log(`  dd conv=fdatasync on the same disk: ${summary.ddFdatasyncMBps} MB/s → ratio ${summary.ratioToDd}`);
    console.log(`  acknowledged ${acked} records; log end offsets sum ${logEnd}${errors ? `; ${errors} errors` : ''}`);
    console.log(`  machine load average (1 min) ${summary.loadAverage1m} on ${summary.cpus} CPUs`);
    console.log(JSON.stringify(summary));
    if (logEnd !== acked) {
      console.error(`MISMATCH: acknowledged ${acked} records but the log holds ${logEnd}`);
      process.exitCode = 1;
    }
  } finally {
    await lance.stop('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
