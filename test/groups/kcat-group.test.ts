import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, startLance, type LanceProcess } from '../kafka/helpers/broker.ts';
import { kcat } from '../kafka/helpers/kcat.ts';

let lance: LanceProcess | undefined;
afterAll(async () => {
  await lance?.stop('SIGKILL');
  if (lance) removeDir(lance.dataDir);
});

describe('kcat -G (librdkafka balanced consumer group)', () => {
  it('consumes every record through the group, commits, and a second run resumes after the committed offsets', async () => {
    lance = await startLance();
    const admin = new Kafka({ brokers: [lance.bootstrap], clientId: 'kcat-g', logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'kg', numPartitions: 3 }] });
    const p = await kcat(['-P', '-b', lance.bootstrap, '-t', 'kg', '-K', ':'], Array.from({ length: 90 }, (_, i) => `${i}:v${i}`).join('\n') + '\n');
    expect(p.code, p.stderr).toBe(0);
    // -e: exit once every assigned partition is at its end; offsets are committed on close
    const consume = () => kcat(['-b', lance!.bootstrap, '-G', 'kcat-group', '-X', 'auto.offset.reset=earliest', '-X', 'enable.auto.commit=true', '-e', '-q', '-f', '%s\n', 'kg'], undefined, 120_000);
    const first = await consume();
    expect(first.code, first.stderr).toBe(0);
    const got = first.stdout.split('\n').filter((l) => l !== '');
    expect(new Set(got)).toEqual(new Set(Array.from({ length: 90 }, (_, i) => `v${i}`)));
    const offsets = await admin.fetchOffsets({ groupId: 'kcat-group', topics: ['kg'] });
    expect(offsets[0]!.partitions.reduce((n, x) => n + Number(x.offset), 0)).toBe(90);
    const p2 = await kcat(['-P', '-b', lance.bootstrap, '-t', 'kg'], 'late1\nlate2\n');
    expect(p2.code, p2.stderr).toBe(0);
    const second = await consume();
    expect(second.stdout.split('\n').filter((l) => l !== '').sort()).toEqual(['late1', 'late2']);
    await admin.disconnect();
  }, 240_000);
});
