import { Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, removeDir, startLance, tempDataDir, waitFor, type LanceProcess } from '../kafka/helpers/broker.ts';
import { kcat } from '../kafka/helpers/kcat.ts';
import { startDropProxy, type DropProxy } from './helpers/drop-proxy.ts';

let lance: LanceProcess | undefined;
let proxy: DropProxy | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await proxy?.close();
  await lance?.stop('SIGKILL');
  for (const d of dirs.splice(0)) removeDir(d);
  proxy = lance = undefined;
});

/** every value of the topic (all partitions), read with kcat */
async function readAll(bootstrap: string, topic: string): Promise<string[]> {
  const r = await kcat(['-C', '-b', bootstrap, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\n']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter((l) => l !== '');
}

function duplicates(vals: string[]): string[] {
  const seen = new Set<string>();
  return vals.filter((v) => (seen.has(v) ? true : (seen.add(v), false)));
}

/** broker behind a proxy that swallows the answers to the given Produce requests (the broker advertises the proxy) */
async function brokerBehindProxy(drop: number[], cut = true): Promise<{ bootstrap: string }> {
  const kafkaPort = await freePort();
  proxy = await startDropProxy(kafkaPort, drop, cut);
  lance = await startLance({ kafkaPort, advertisedPort: proxy.port });
  dirs.push(lance.dataDir);
  return { bootstrap: `127.0.0.1:${proxy.port}` };
}

describe('idempotent producer: retried produce requests write no duplicate', () => {
  it('kafkajs idempotent: true, answers to two produce requests lost on the wire', async () => {
    const { bootstrap } = await brokerBehindProxy([20, 45]);
    const kafka = new Kafka({ brokers: [bootstrap], clientId: 'idem', logLevel: logLevel.NOTHING, requestTimeout: 5000, retry: { retries: 10, initialRetryTime: 100 } });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'idem', numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let i = 0; i < 80; i++) await producer.send({ topic: 'idem', acks: -1, messages: [{ value: `s${i}` }] });
    await producer.disconnect();
    expect(proxy!.dropped()).toBe(2);
    const vals = await readAll(`127.0.0.1:${lance!.kafkaPort}`, 'idem');
    expect(duplicates(vals)).toEqual([]);
    expect(vals).toEqual(Array.from({ length: 80 }, (_, i) => `s${i}`));
  }, 180_000);

  it('kcat (librdkafka) enable.idempotence=true: InitProducerId + sequenced batches accepted, every record once', async () => {
    // No lost answers here: kcat terminates ("All broker connections are down") as soon as its single broker
    // connection drops or a request times out, so a retry cannot be provoked through kcat; kafkajs covers that above.
    const { bootstrap } = await brokerBehindProxy([]);
    const admin = new Kafka({ brokers: [bootstrap], clientId: 'idem-admin', logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'kidem', numPartitions: 1 }] });
    await admin.disconnect();
    const input = Array.from({ length: 2000 }, (_, i) => `k${i}`).join('\n') + '\n';
    const r = await kcat(['-P', '-b', bootstrap, '-t', 'kidem', '-X', 'enable.idempotence=true', '-X', 'linger.ms=5', '-X', 'batch.num.messages=100', '-X', 'max.in.flight.requests.per.connection=5'], input, 120_000);
    expect(r.code, r.stderr).toBe(0);
    expect(proxy!.produces()).toBeGreaterThan(1);
    const vals = await readAll(`127.0.0.1:${lance!.kafkaPort}`, 'kidem');
    expect(duplicates(vals)).toEqual([]);
    expect(new Set(vals).size).toBe(2000);
  }, 180_000);

  it('kafkajs idempotent across a broker SIGKILL + restart mid-stream: no duplicate, nothing lost', async () => {
    const kafkaPort = await freePort();
    const adminPort = await freePort();
    const dataDir = tempDataDir();
    dirs.push(dataDir);
    lance = await startLance({ dataDir, kafkaPort, adminPort });
    const kafka = new Kafka({ brokers: [lance.bootstrap], clientId: 'idem-kill', logLevel: logLevel.NOTHING, requestTimeout: 5000, retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 2000 } });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'kill', numPartitions: 2 }] });
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    let sent = 0;
    const sender = (async () => {
      for (let i = 0; i < 300; i++) {
        await producer.send({ topic: 'kill', acks: -1, messages: [{ key: String(i % 7), value: `u${i}` }] });
        sent = i + 1;
      }
    })();
    await waitFor('a third sent', () => sent >= 100, 60_000, 10);
    await lance.stop('SIGKILL');
    lance = await startLance({ dataDir, kafkaPort, adminPort });
    await sender;
    await producer.disconnect();
    const vals = await readAll(lance.bootstrap, 'kill');
    expect(duplicates(vals)).toEqual([]);
    expect(new Set(vals)).toEqual(new Set(Array.from({ length: 300 }, (_, i) => `u${i}`)));
  }, 240_000);
});
