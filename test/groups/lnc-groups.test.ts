import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, startLance, waitFor, type LanceProcess } from '../kafka/helpers/broker.ts';
import { lnc } from '../server/helpers.ts';

let lance: LanceProcess | undefined;
afterAll(async () => {
  await lance?.stop('SIGKILL');
  if (lance) removeDir(lance.dataDir);
});

describe('lnc groups (admin API /v1/groups) against a standalone broker', () => {
  it('list, describe with lag per partition, reset-offsets (dry run, --execute, refused while members are active); metrics', async () => {
    lance = await startLance();
    const server = `127.0.0.1:${lance.adminPort}`;
    const kafka = new Kafka({ brokers: [lance.bootstrap], clientId: 'lnc-groups', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'lg', numPartitions: 2 }] });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'lg', messages: Array.from({ length: 20 }, (_, i) => ({ partition: i % 2, value: `v${i}` })) });
    const consumer = kafka.consumer({ groupId: 'lg-group' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'lg', fromBeginning: true });
    let n = 0;
    await consumer.run({ eachMessage: async () => { n++; } });
    await waitFor('all read and committed', async () => {
      const o = await admin.fetchOffsets({ groupId: 'lg-group', topics: ['lg'] });
      return n >= 20 && o[0]!.partitions.every((p) => p.offset === '10');
    }, 60_000, 200);

    const busy = await lnc(['groups', 'describe', 'lg-group', '--server', server, '--json']);
    expect(busy.code, busy.stderr).toBe(0);
    const d1 = JSON.parse(busy.stdout) as { state: string; members: Array<{ memberId: string; assignment: Array<{ topic: string; partitions: number[] }> }>; partitions: Array<{ partition: number; committedOffset: number; lag: number; memberId: string | null }> };
    expect(d1.state).toBe('Stable');
    expect(d1.members).toHaveLength(1);
    expect(d1.members[0]!.assignment).toEqual([{ topic: 'lg', partitions: [0, 1] }]);
    expect(d1.partitions.map((p) => [p.partition, p.committedOffset, p.lag, p.memberId])).toEqual([[0, 10, 0, d1.members[0]!.memberId], [1, 10, 0, d1.members[0]!.memberId]]);
    const refused = await lnc(['groups', 'reset-offsets', 'lg-group', '--server', server, '--topic', 'lg', '--to-earliest', '--execute']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/CONFLICT.*Stable.*no members/);
    const metrics = await (await fetch(`http://${server}/metrics`)).text();
    expect(metrics).toMatch(/lance_groups\{state="Stable"\} 1/);
    expect(metrics).toMatch(/lance_offset_commits_total [1-9]/);
    expect(metrics).toMatch(/lance_group_rebalances_total [1-9]/);
    expect(metrics).toMatch(/lance_consumer_lag\{group="lg-group",topic="lg",partition="0"\} 0/);
    await consumer.disconnect();

    await producer.send({ topic: 'lg', messages: [{ partition: 0, value: 'late' }] });
    const list = await lnc(['groups', 'list', '--server', server, '--json']);
    expect(JSON.parse(list.stdout)).toEqual([{ group: 'lg-group', state: 'Empty', protocolType: 'consumer', members: 0 }]);
    const human = await lnc(['groups', 'describe', 'lg-group', '--server', server]);
    expect(human.stdout).toMatch(/CURRENT-OFFSET\s+LOG-END-OFFSET\s+LAG/);
    expect(human.stdout).toMatch(/lg-group\s+lg\s+0\s+10\s+11\s+1/);

    const dry = await lnc(['groups', 'reset-offsets', 'lg-group', '--server', server, '--topic', 'lg', '--to-earliest']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/dry run/);
    expect((await admin.fetchOffsets({ groupId: 'lg-group', topics: ['lg'] }))[0]!.partitions.map((p) => p.offset)).toEqual(['10', '10']);
    const exec = await lnc(['groups', 'reset-offsets', 'lg-group', '--server', server, '--topic', 'lg', '--to-earliest', '--execute', '--json']);
    expect(exec.code, exec.stderr).toBe(0);
    expect(JSON.parse(exec.stdout)).toMatchObject({ executed: true, offsets: [{ partition: 0, current: 10, target: 0 }, { partition: 1, current: 10, target: 0 }] });
    expect((await admin.fetchOffsets({ groupId: 'lg-group', topics: ['lg'] }))[0]!.partitions.map((p) => p.offset)).toEqual(['0', '0']);
    const latest = await lnc(['groups', 'reset-offsets', 'lg-group', '--server', server, '--topic', 'lg', '--to-latest', '--execute', '--json']);
    expect(JSON.parse(latest.stdout).offsets.map((o: { target: number }) => o.target)).toEqual([11, 10]);
    const usage = await lnc(['groups', 'reset-offsets', 'lg-group', '--server', server, '--topic', 'lg', '--to-datetime', 'yesterday']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--to-datetime/);
    const missing = await lnc(['groups', 'describe', 'nope', '--server', server]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/NOT_FOUND.*nope/);
    await producer.disconnect();
    await admin.disconnect();
  }, 240_000);
});
