/**
 * Cluster mode: kcat -G group consumption, `lnc groups` against any node (answered by the controller), group metrics
 * on the controller, DeleteGroups, and a full restart of every node bringing groups and offsets back.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { TestCluster, waitUntil } from '../cluster/harness.ts';
import { kcat } from '../kafka/helpers/kcat.ts';
import { lnc } from '../server/helpers.ts';
import { committedOffsets, controllerOf, startNodes, topicReady } from './helpers/cluster.ts';

let cluster: TestCluster | undefined;
afterAll(async () => {
  await cluster?.cleanup();
});

interface Detail { state: string; partitions: Array<{ partition: number; committedOffset: number | null; logEndOffset: number | null; lag: number | null }> }

describe('consumer groups on a 3-node cluster: kcat -G, lnc groups on any node, metrics, full restart', () => {
  it('works end to end', async () => {
    cluster = await TestCluster.start(3);
    const c = cluster;
    const bootstrap = c.bootstrap().join(',');
    const ctl = await controllerOf(c);
    const other = [1, 2, 3].find((n) => n !== ctl)!;
    const kafka = new Kafka({ brokers: c.bootstrap(), clientId: 'cluster-admin', logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 2000 } });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'kg', numPartitions: 3 }] });
    await topicReady(c, 'kg', 3);

    // kcat -G: librdkafka's balanced consumer group, offsets committed on close; a second run resumes after them
    const p = await kcat(['-P', '-b', bootstrap, '-t', 'kg', '-K', ':'], Array.from({ length: 90 }, (_, i) => `${i}:v${i}`).join('\n') + '\n');
    expect(p.code, p.stderr).toBe(0);
    const consume = () => kcat(['-b', bootstrap, '-G', 'kcat-group', '-X', 'auto.offset.reset=earliest', '-X', 'enable.auto.commit=true', '-e', '-q', '-f', '%s\n', 'kg'], undefined, 180_000);
    const first = await consume();
    expect(first.code, first.stderr).toBe(0);
    expect(new Set(first.stdout.split('\n').filter((l) => l !== ''))).toEqual(new Set(Array.from({ length: 90 }, (_, i) => `v${i}`)));
    const o1 = await committedOffsets(admin, 'kcat-group', 'kg');
    expect([...o1.values()].reduce((n, x) => n + x, 0)).toBe(90);
    const p2 = await kcat(['-P', '-b', bootstrap, '-t', 'kg', '-p', '0'], 'late1\nlate2\n');
    expect(p2.code, p2.stderr).toBe(0);
    const second = await consume();
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout.split('\n').filter((l) => l !== '').sort()).toEqual(['late1', 'late2']);

    // lnc groups on a NON-controller node: forwarded to the controller
    for (const node of [other, ctl]) {
      const server = `127.0.0.1:${c.node(node).adminPort}`;
      const list = await lnc(['groups', 'list', '--server', server, '--json']);
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout)).toEqual([{ group: 'kcat-group', state: 'Empty', protocolType: 'consumer', members: 0 }]);
      const d = await lnc(['groups', 'describe', 'kcat-group', '--server', server, '--json']);
      expect(d.code, d.stderr).toBe(0);
      const detail = JSON.parse(d.stdout) as Detail;
      expect(detail.state).toBe('Empty');
      expect(detail.partitions.map((x) => x.committedOffset! - x.logEndOffset!)).toEqual([0, 0, 0]);
    }
    const missing = await lnc(['groups', 'describe', 'nope', '--server', `127.0.0.1:${c.node(other).adminPort}`]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/NOT_FOUND.*nope/);

    // reset-offsets on a non-controller (the group is Empty): to earliest, then the lag is the whole partition
    const server = `127.0.0.1:${c.node(other).adminPort}`;
    const reset = await lnc(['groups', 'reset-offsets', 'kcat-group', '--server', server, '--topic', 'kg', '--to-earliest', '--execute']);
    expect(reset.code, reset.stderr).toBe(0);
    expect([...(await committedOffsets(admin, 'kcat-group', 'kg')).values()]).toEqual([0, 0, 0]);
    const d2 = JSON.parse((await lnc(['groups', 'describe', 'kcat-group', '--server', server, '--json'])).stdout) as Detail;
    expect(d2.partitions.reduce((n, x) => n + (x.lag ?? 0), 0)).toBe(92);

    // metrics: the (current) controller reports the groups it coordinates and the consumer lag; the counters count
    // on the node that was controller when it happened (the controller may have moved on this loaded machine)
    const scrape = async (id: number): Promise<string> => (await fetch(`http://127.0.0.1:${c.node(id).adminPort}/metrics`)).text();
    await waitUntil('group gauges on the controller', async () => {
      const m = await scrape(await controllerOf(c));
      return /lance_groups\{state="Empty"\} 1\b/.test(m) && /lance_consumer_lag\{group="kcat-group",topic="kg",partition="0"\} [1-9]/.test(m);
    }, 60_000);
    const all = await Promise.all([1, 2, 3].map(scrape));
    const total = (name: string): number => all.reduce((n, m) => n + Number(new RegExp(`^${name} (\\d+)`, 'm').exec(m)?.[1] ?? 0), 0);
    expect(total('lance_offset_commits_total')).toBeGreaterThan(0);
    expect(total('lance_group_rebalances_total')).toBeGreaterThan(0);

    // a second group with committed offsets, then deleted through the Kafka API
    await admin.setOffsets({ groupId: 'doomed', topic: 'kg', partitions: [{ partition: 0, offset: '1' }] });
    expect((await committedOffsets(admin, 'doomed', 'kg')).get(0)).toBe(1);
    await admin.deleteGroups(['doomed']);
    expect((await admin.listGroups()).groups.map((g) => g.groupId)).toEqual(['kcat-group']);

    // full restart of every node: groups and offsets are back (replayed from the metadata log)
    await admin.setOffsets({ groupId: 'kcat-group', topic: 'kg', partitions: [{ partition: 0, offset: '5' }, { partition: 1, offset: '6' }, { partition: 2, offset: '7' }] });
    await admin.disconnect();
    await c.stop();
    await startNodes(c, [1, 2, 3]);
    await controllerOf(c);
    const admin2 = new Kafka({ brokers: c.bootstrap(), clientId: 'cluster-admin-2', logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 2000 } }).admin();
    await admin2.connect();
    const back = await waitUntil('offsets back after the restart', async () => {
      const o = await committedOffsets(admin2, 'kcat-group', 'kg').catch(() => null);
      return o && o.get(0) === 5 ? o : undefined;
    }, 120_000);
    expect([...back.entries()].sort((x, y) => x[0] - y[0])).toEqual([[0, 5], [1, 6], [2, 7]]);
    const l2 = await lnc(['groups', 'list', '--server', server, '--json']);
    expect(JSON.parse(l2.stdout)).toEqual([{ group: 'kcat-group', state: 'Empty', protocolType: 'consumer', members: 0 }]);
    await admin2.disconnect();
    // and the group consumes on from there
    const third = await consume();
    expect(third.code, third.stderr).toBe(0);
    expect(third.stdout.split('\n').filter((l) => l !== '').length).toBe(92 - 18);
  }, 900_000);
});
