import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, startLance, waitFor, type LanceProcess } from '../kafka/helpers/broker.ts';
import { killConsumers, startConsumer, type ConsumerChild } from './helpers/children.ts';

const TOPIC = 'work';
const GROUP = 'workers';
const PARTITIONS = 6;
let lance: LanceProcess | undefined;
const dirs: string[] = [];

afterAll(async () => {
  killConsumers();
  await lance?.stop('SIGKILL');
  for (const d of dirs) removeDir(d);
});

function values(children: ConsumerChild[]): Set<string> {
  const seen = new Set<string>();
  for (const c of children) for (const l of c.lines) if (l.startsWith('REC ')) seen.add(l.split(' ')[3]!);
  return seen;
}

async function committed(admin: Admin): Promise<Map<number, number>> {
  const r = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  return new Map(r[0]!.partitions.map((p) => [p.partition, Number(p.offset)]));
}

describe('kafkajs consumer groups on a standalone broker', () => {
  it('3 members on 6 partitions; join, leave, SIGKILL; at-least-once, offsets never go back; resume after a broker SIGKILL', async () => {
    lance = await startLance();
    dirs.push(lance.dataDir);
    const kafka = new Kafka({ brokers: [lance.bootstrap], clientId: 'groups-test', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }] });
    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    const produce = async (prefix: string, n: number) => {
      for (let i = 0; i < n; i += 20) {
        await producer.send({ topic: TOPIC, messages: Array.from({ length: Math.min(20, n - i) }, (_, j) => ({ key: `${prefix}${i + j}`, value: `${prefix}${i + j}` })) });
      }
    };

    const children = [0, 1, 2].map(() => startConsumer(lance!.bootstrap, GROUP, TOPIC));
    await waitFor('3 stable members', async () => {
      const d = await admin.describeGroups([GROUP]);
      return d.groups[0]!.state === 'Stable' && d.groups[0]!.members.length === 3;
    }, 90_000, 200);

    // committed offsets are sampled throughout: they must never move backwards
    const history = new Map<number, number>();
    let backwards = '';
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const c = await committed(admin).catch(() => null);
        for (const [p, o] of c ?? []) {
          const prev = history.get(p) ?? -1;
          if (o < prev) backwards += `partition ${p}: ${prev} → ${o}; `;
          history.set(p, Math.max(prev, o));
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    await produce('a', 300);
    await waitFor('some records consumed', () => values(children).size >= 100, 90_000);
    children[0]!.proc.kill('SIGKILL'); // a crashed member: its session expires, the others take over
    await produce('b', 150);
    children.push(startConsumer(lance.bootstrap, GROUP, TOPIC)); // a member joins
    children[1]!.proc.kill('SIGTERM'); // a member leaves gracefully (LeaveGroup)
    await children[1]!.exited;
    await produce('c', 150);
    const batches: Array<[string, number]> = [['a', 300], ['b', 150], ['c', 150]];
    const expected = new Set(batches.flatMap(([p, n]) => Array.from({ length: n }, (_, i) => `${p}${i}`)));
    await waitFor('every record processed at least once', () => [...expected].every((v) => values(children).has(v)), 120_000, 200);
    // offsets reach the end once the survivors have committed
    const ends = await admin.fetchTopicOffsets(TOPIC);
    await waitFor('all offsets committed', async () => {
      const c = await committed(admin);
      return ends.every((e) => c.get(e.partition) === Number(e.high));
    }, 60_000, 200);
    sampling = false;
    await sampler;
    expect(backwards).toBe('');
    for (const c of children) c.proc.kill('SIGTERM');
    await Promise.all(children.map((c) => c.exited));
    await waitFor('group empty', async () => (await admin.describeGroups([GROUP])).groups[0]!.state === 'Empty', 60_000, 200);
    const before = await committed(admin);
    await producer.disconnect();
    await admin.disconnect();

    // broker SIGKILL: the committed offsets were durable before OffsetCommit was answered
    const { dataDir, kafkaPort, adminPort } = lance;
    await lance.stop('SIGKILL');
    lance = await startLance({ dataDir, kafkaPort, adminPort });
    const kafka2 = new Kafka({ brokers: [lance.bootstrap], clientId: 'groups-test-2', logLevel: logLevel.NOTHING });
    const admin2 = kafka2.admin();
    await admin2.connect();
    expect(await committed(admin2)).toEqual(before);
    const producer2 = kafka2.producer({ idempotent: true });
    await producer2.connect();
    await producer2.send({ topic: TOPIC, messages: Array.from({ length: 30 }, (_, i) => ({ key: `d${i}`, value: `d${i}` })) });
    const resumed = startConsumer(lance.bootstrap, GROUP, TOPIC);
    await waitFor('the new records', () => Array.from({ length: 30 }, (_, i) => `d${i}`).every((v) => values([resumed]).has(v)), 90_000, 200);
    // it resumed from the committed offsets: nothing from before the restart is read again
    const old = [...values([resumed])].filter((v) => !v.startsWith('d'));
    expect(old).toEqual([]);
    resumed.proc.kill('SIGTERM');
    await resumed.exited;
    await producer2.disconnect();
    await admin2.disconnect();
  }, 400_000);
});
