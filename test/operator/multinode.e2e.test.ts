/**
 * PENDING — NOT part of the suite (the file name does not match *.test.ts). The 3-broker parts of issue 8's
 * acceptance, written now so they run unchanged once replication lands: rename to multinode.e2e.test.ts when
 * (1) three brokers started from examples/cluster.yaml form a Raft cluster, (2) GET /v1/cluster reports the
 * metadata-group role and term, and (3) the admin client has fence/unfence, transfer-leader and members
 * add/remove — then set the matching `supports` flags in operator/src/controllers/broker-admin.ts.
 */
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import net from 'node:net';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandIn, type StandIn } from '../kube/cluster.ts';
import { REPO_ROOT } from '../kube/images.ts';
import { kubectl, toolEnv, waitFor } from '../kube/testutil.ts';
import { runOperator, type RunningOperator } from '../../operator/src/main.ts';

interface Lc { status?: { phase?: string; ready?: string; leader?: string; controllerTerm?: number; rollout?: { order: string[]; podsPending: string[] }; conditions?: { type: string; status: string; reason: string }[]; currentImage?: string } }

describe('LanceCluster e2e (3 brokers, replication)', () => {
  let k: StandIn;
  let env: NodeJS.ProcessEnv;
  let op: RunningOperator;
  const getJson = async <T>(args: string[]): Promise<T> => JSON.parse((await kubectl(env, ['get', ...args, '-o', 'json'])).stdout) as T;
  const lc = (): Promise<Lc> => getJson<Lc>(['lc', 'demo']);
  const pidOf = async (pod: string): Promise<number> => Number((await getJson<{ status: { containerStatuses: { containerID: string }[] } }>(['pod', pod])).status.containerStatuses[0]!.containerID.replace('standin://', ''));

  async function kafka(): Promise<Kafka> {
    const ips = new Map<string, string>();
    for (const p of (await getJson<{ items: { metadata: { name: string }; status: { podIP: string } }[] }>(['pods', '-l', 'app.kubernetes.io/instance=demo'])).items) ips.set(p.metadata.name, p.status.podIP);
    const ep = await getJson<{ subsets: { addresses: { ip: string }[] }[] }>(['endpoints', 'demo']);
    return new Kafka({
      clientId: 'multinode', brokers: ep.subsets[0]!.addresses.map((a) => `${a.ip}:9092`), logLevel: logLevel.NOTHING,
      socketFactory: ({ host, port, onConnect }) => net.connect({ host: ips.get(host.split('.')[0]!) ?? host, port }, onConnect),
    });
  }

  beforeAll(async () => {
    k = await startStandIn();
    env = toolEnv(k.kubeconfigPath);
    expect((await kubectl(env, ['apply', '-f', path.join(REPO_ROOT, 'crds')])).code).toBe(0);
    op = await runOperator({ kubeconfig: k.kubeconfigPath, namespaces: ['default'], healthPort: 0, metricsPort: 0, leaderElect: false, leaseName: 'lance-operator', brokerBindAddress: 'podIP' });
    expect((await kubectl(env, ['apply', '-f', path.join(REPO_ROOT, 'examples', 'cluster.yaml')])).code).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await op?.stop();
    await k?.stop();
  }, 120_000);

  it('3 pods Ready; kubectl get lc shows Running 3/3, a Leader and a Term', async () => {
    await waitFor('Running 3/3 with a leader', async () => { const s = (await lc()).status; return s?.phase === 'Running' && s.ready === '3/3' && s.leader && s.controllerTerm !== undefined; }, 180_000);
    expect((await kubectl(env, ['get', 'lc'])).stdout).toMatch(/demo\s+Running\s+3\/3\s+demo-\d\s+\d+/);
  }, 240_000);

  it('a stalled leader (SIGSTOP) → majority elects; on resume the stale leader is fenced, then healed and unfenced; acks=all loses nothing', async () => {
    const client = await kafka();
    const admin = client.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'sb', numPartitions: 1, replicationFactor: 3 }], waitForLeaders: true });
    const producer = client.producer();
    await producer.connect();
    const acked: string[] = [];
    for (let i = 0; i < 50; i++) { await producer.send({ topic: 'sb', acks: -1, messages: [{ value: `v${i}` }] }); acked.push(`v${i}`); }
    const oldLeader = (await lc()).status!.leader!;
    const pid = await pidOf(oldLeader);
    process.kill(pid, 'SIGSTOP');
    try {
      await waitFor('new leader elected', async () => { const l = (await lc()).status?.leader; return l !== undefined && l !== oldLeader; }, 60_000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor('SplitBrain or Fenced recorded', async () => (await lc()).status?.conditions?.some((c) => (c.type === 'SplitBrain' || c.type === 'Fenced') && c.status === 'True'), 60_000);
    await waitFor('healed: nobody fenced', async () => (await lc()).status?.conditions?.some((c) => c.type === 'Fenced' && c.status === 'False'), 120_000);
    const offsets = await admin.fetchTopicOffsets('sb');
    expect(Number(offsets[0]!.high)).toBeGreaterThanOrEqual(acked.length);
    await producer.disconnect();
    await admin.disconnect();
  }, 300_000);

  it('image change → followers restarted first, the leader last (after a transfer); producer keeps working', async () => {
    const leader = (await lc()).status!.leader!;
    expect((await kubectl(env, ['patch', 'lc', 'demo', '--type', 'merge', '-p', '{"spec":{"image":"lance/broker:v2"}}'])).code).toBe(0);
    await waitFor('rollout complete', async () => { const s = (await lc()).status; return s?.phase === 'Running' && s.currentImage === 'lance/broker:v2'; }, 600_000);
    const order = (await lc()).status!.rollout!.order;
    expect(order).toHaveLength(3);
    expect(order[2]).toBe(leader);
  }, 660_000);

  it('scale 3 → 5 → 3 with data intact', async () => {
    for (const n of [5, 3]) {
      expect((await kubectl(env, ['patch', 'lc', 'demo', '--type', 'merge', '-p', JSON.stringify({ spec: { replicas: n } })])).code).toBe(0);
      await waitFor(`Running ${n}/${n}`, async () => { const s = (await lc()).status; return s?.phase === 'Running' && s.ready === `${n}/${n}`; }, 600_000);
    }
    const client = await kafka();
    const admin = client.admin();
    await admin.connect();
    expect(Number((await admin.fetchTopicOffsets('sb'))[0]!.high)).toBeGreaterThanOrEqual(50);
    await admin.disconnect();
  }, 1_300_000);

  it('replicas below the topics\' replication factor is refused with a condition and an event', async () => {
    expect((await kubectl(env, ['patch', 'lc', 'demo', '--type', 'merge', '-p', '{"spec":{"replicas":1}}'])).code).toBe(0);
    await waitFor('ScaleRefused', async () => (await lc()).status?.conditions?.some((c) => c.reason === 'ScaleRefused'), 60_000);
    expect(YAML.stringify((await getJson<{ items: { reason: string }[] }>(['events'])).items.map((e) => e.reason))).toContain('ScaleRefused');
  }, 120_000);
});
