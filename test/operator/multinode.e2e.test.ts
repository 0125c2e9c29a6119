/**
 * Issue 8's multi-broker acceptance: `kubectl apply -f examples/cluster.yaml` on the test/kube stand-in starts 3 real
 * broker processes that form a Raft cluster; the operator (in this process) keeps it healthy through a killed
 * process, a wiped disk, node replacement under NEW node ids (replace annotation, deleted PVC, lost node), a network
 * partition of the leader, an image rollout and scaling 3 → 5 → 3 → 5 → 3 (never-used ids), while a kafkajs
 * producer with acks=all runs. "Nothing lost" is checked on every broker's own replica (admin fetch), not only
 * through the leader. Runs as root on Linux (the partition uses iptables + cgroup v2; see test/kube/faults.ts).
 * Takes ~2-2.5 min on the shared 2-core box (10 tests, one stand-in, 3-5 broker processes).
 */
import path from 'node:path';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../broker/src/admin/client.ts';
import { startStandIn, type StandIn } from '../kube/cluster.ts';
import { REPO_ROOT } from '../kube/images.ts';
import { kubectl, toolEnv, waitFor } from '../kube/testutil.ts';
import { runOperator, type RunningOperator } from '../../operator/src/main.ts';

interface Member { ordinal: number; pod: string; nodeId?: number; role: string; term?: number; lag?: number; fenced: boolean; ready: boolean }
interface Lc {
  status?: {
    phase?: string; ready?: string; leader?: string; controllerTerm?: number; currentImage?: string; members?: Member[];
    rollout?: { order: string[]; podsPending: string[] }; conditions?: { type: string; status: string; reason: string; message: string }[];
    nodeIds?: Record<string, number>; nextNodeId?: number; replacement?: unknown;
  };
}
interface PodJson { metadata: { uid: string; labels: Record<string, string> }; spec: { containers: { image: string }[] }; status: { podIP?: string; containerStatuses?: { restartCount: number; ready: boolean }[] } }
interface EventJson { reason: string; message: string; involvedObject: { name: string } }

const NS = 'default';
const TOPIC = 'acc';
const PARTITIONS = 3;
const PODS = ['demo-0', 'demo-1', 'demo-2'];

describe('LanceCluster e2e: 3 brokers forming a Raft cluster', () => {
  let k: StandIn;
  let env: NodeJS.ProcessEnv;
  let op: RunningOperator;
  /** Every value a producer got an acks=all answer for, over the whole suite. */
  const acked: string[] = [];
  /** Every node id a broker of this cluster ran under (a new broker must never get one of them). */
  const usedIds = new Set<number>([0, 1, 2]);

  const getJson = async <T>(args: string[]): Promise<T> => {
    const r = await kubectl(env, ['get', ...args, '-o', 'json']);
    if (r.code !== 0) throw new Error(`kubectl get ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const lc = (): Promise<Lc> => getJson<Lc>(['lc', 'demo']);
  const pod = (name: string): Promise<PodJson> => getJson<PodJson>(['pod', name]);
  const events = async (): Promise<EventJson[]> => (await getJson<{ items: EventJson[] }>(['events'])).items;
  const condition = (s: Lc['status'], type: string) => s?.conditions?.find((c) => c.type === type);
  const running3 = async (): Promise<boolean> => {
    const s = (await lc()).status;
    return s?.phase === 'Running' && s.ready === '3/3' && s.leader !== undefined && (s.members ?? []).every((m) => m.ready && m.role !== 'Unknown');
  };
  const podIp = (name: string): string | undefined => k.kubelet!.podRuntime(NS, name)?.ip;

  /** A client bootstrapped from the client Service's endpoints; advertised pod DNS names resolve like cluster DNS. */
  async function kafka(clientId: string): Promise<Kafka> {
    const ep = await getJson<{ subsets?: { addresses?: { ip: string }[] }[] }>(['endpoints', 'demo']);
    const brokers = (ep.subsets ?? []).flatMap((s) => s.addresses ?? []).map((a) => `${a.ip}:9092`);
    expect(brokers.length).toBeGreaterThan(0);
    return new Kafka({
      clientId, brokers, logLevel: logLevel.NOTHING, connectionTimeout: 3_000, requestTimeout: 5_000,
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1_000 },
      // Looked up per connection: a replaced pod comes back with a new IP.
      socketFactory: ({ host, port, onConnect }) => {
        const s = net.connect({ host: podIp(host.split('.')[0]!) ?? host, port }, onConnect);
        s.setKeepAlive(true, 1_000);
        return s;
      },
    });
  }

  /**
   * acks=all producer in the background until stopped; only answered sends count as acknowledged. After a failed send
   * (kafkajs's retries exhausted) it starts over from the client Service (what an application restarting its client
   * does): a black-holed broker never answers, so kafkajs alone can stay stuck on it.
   */
  async function startProducer(prefix: string): Promise<{ stop: () => Promise<{ acked: number; failed: number; reconnects: number }>; count: () => number; state: () => string }> {
    const connect = async (): Promise<Producer> => {
      const p = (await kafka(`producer-${prefix}`)).producer({ retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 } });
      await p.connect();
      return p;
    };
    const close = (p: Producer): Promise<unknown> => Promise.race([p.disconnect().catch(() => undefined), delay(5_000)]);
    let producer = await connect();
    let stopped = false;
    let n = 0;
    let ok = 0;
    let failed = 0;
    let inRow = 0;
    let reconnects = 0;
    const loop = (async () => {
      while (!stopped) {
        const value = `${prefix}-${n++}`;
        try {
          await producer.send({ topic: TOPIC, acks: -1, timeout: 5_000, messages: [{ key: value, value }] });
          acked.push(value);
          ok++;
          inRow = 0;
        } catch {
          failed++; // not acknowledged: may or may not be stored, never counted
          inRow++;
          await delay(200); // load generator back-off after kafkajs's own retries gave up
          if (!stopped) {
            void close(producer);
            producer = await connect().catch(() => producer);
            reconnects++;
          }
        }
      }
    })();
    return {
      count: () => ok,
      state: () => `acked ${ok}, failed ${failed}, reconnects ${reconnects}, inRow ${inRow}`,
      stop: async () => {
        stopped = true;
        await loop;
        await close(producer);
        return { acked: ok, failed, reconnects };
      },
    };
  }

  /** The metadata leader as the brokers say right now (status.leader can be a reconcile behind). */
  async function metaLeader(): Promise<string> {
    return waitFor('a metadata leader', async () => {
      let best: { pod: string; term: number } | undefined;
      for (const name of PODS) {
        try {
          const meta = (await new AdminClient(`${podIp(name)}:1992`, { timeoutMs: 3_000 }).cluster()).groups?.find((g) => g.group === '__meta');
          if (meta?.role === 'leader' && (!best || meta.term > best.term)) best = { pod: name, term: meta.term };
        } catch {
          // not reachable right now
        }
      }
      return best?.pod;
    }, 60_000, 200);
  }

  /** Each broker's Raft groups (role, term, leader) for failure messages. */
  async function diag(): Promise<string> {
    const out: string[] = [];
    for (const name of PODS) {
      try {
        const v = await new AdminClient(`${podIp(name)}:1992`, { timeoutMs: 3_000 }).cluster();
        out.push(`${name}: ${(v.groups ?? []).map((g) => `${g.group}=${g.role}/t${g.term}/L${g.leader}`).join(' ')}`);
      } catch (e) {
        out.push(`${name}: ${(e as Error).message}`);
      }
    }
    return out.join(' | ');
  }

  /** The values in one broker's own replica of every partition (committed data; any replica serves admin fetch). */
  async function replicaValues(name: string): Promise<Map<string, string>> {
    const ip = podIp(name);
    if (!ip) return new Map();
    const client = new AdminClient(`${ip}:1992`, { timeoutMs: 10_000 });
    const out = new Map<string, string>(); // value → "partition@offset"
    for (let p = 0; p < PARTITIONS; p++) {
      let offset = 0;
      for (;;) {
        const r = await client.fetchRecords(TOPIC, p, { offset, max: 5_000, encoding: 'utf8' });
        for (const rec of r.records) if (rec.value !== null) out.set(rec.value, `${p}@${rec.offset}`);
        if (r.records.length === 0 || r.nextOffset >= r.highWatermark) break;
        offset = r.nextOffset;
      }
    }
    return out;
  }

  /** The controller's registry (GET /v1/members) through any broker that answers. */
  async function membersList(): Promise<{ nodeId: number; role: string; state: string }[]> {
    for (const name of PODS) {
      try {
        return (await new AdminClient(`${podIp(name)}:1992`, { timeoutMs: 3_000 }).listMembers()).members;
      } catch {
        // next broker
      }
    }
    throw new Error(`no broker answered /v1/members: ${await diag()}`);
  }

  /**
   * `victim` runs under a NEW node id (recorded in status.nodeIds, reported by its broker); the old id is no longer a
   * member; the new one is an active voter of the metadata group and of every partition group (RF 3 on 3 brokers:
   * every partition had the old id), as every broker's /v1/cluster shows.
   */
  async function expectReplacedWithNewId(victim: string, oldId: number, usedIds: Set<number>): Promise<number> {
    const ordinal = Number(victim.split('-').pop());
    let detail = '';
    const newId = await waitFor(`${victim} replaced under a new node id`, async () => {
      const s = (await lc()).status;
      const id = s?.nodeIds?.[String(ordinal)];
      detail = JSON.stringify({ nodeIds: s?.nodeIds, replacement: s?.replacement });
      return id !== undefined && id !== oldId && s?.replacement === undefined ? id : undefined;
    }, 180_000, 500).catch((e: unknown) => { throw new Error(`${(e as Error).message}: ${detail}`); });
    expect(usedIds.has(newId)).toBe(false); // never an id any broker of this cluster ran under before
    usedIds.add(newId);
    await waitFor(`node ${newId} an active voter of every group, node ${oldId} gone`, async () => {
      try {
        const ms = await membersList();
        const old = ms.find((m) => m.nodeId === oldId);
        const now = ms.find((m) => m.nodeId === newId);
        detail = `members ${JSON.stringify(ms.map((m) => [m.nodeId, m.role, m.state]))}`;
        if ((old && old.state !== 'removed') || now?.state !== 'active' || now.role !== 'voter') return false;
        const views = await Promise.all(PODS.map((p) => new AdminClient(`${podIp(p)}:1992`, { timeoutMs: 3_000 }).cluster()));
        detail += `; views ${views.map((v) => `${v.nodeId}: ${(v.groups ?? []).map((g) => `${g.group}=[${g.voters.join(',')}]`).join(' ')}`).join(' | ')}`;
        if (views.find((v) => v.nodeId === newId) === undefined || views.some((v) => v.nodeId === oldId)) return false;
        // each broker hosts the metadata group and every partition (RF 3 on 3 brokers)
        return views.every((v) => (v.groups ?? []).length === 1 + PARTITIONS && (v.groups ?? []).every((g) => g.voters.includes(newId) && !g.voters.includes(oldId)));
      } catch (e) {
        detail = (e as Error).message;
        return false;
      }
    }, 180_000, 500).catch((e: unknown) => { throw new Error(`${(e as Error).message}: ${detail}`); });
    const member = (await lc()).status?.members?.find((m) => m.pod === victim);
    expect(member?.nodeId).toBe(newId);
    return newId;
  }

  /** Every acknowledged value is on every broker's replica (waits for followers to catch up). */
  async function expectNothingLost(): Promise<void> {
    for (const name of PODS) {
      let missing: string[] = [];
      await waitFor(`${name} holds all ${acked.length} acknowledged records`, async () => {
        try {
          const have = await replicaValues(name);
          missing = acked.filter((v) => !have.has(v));
          return missing.length === 0;
        } catch {
          return false;
        }
      }, 120_000, 500).catch(async (e: unknown) => {
        // Where the missing records are elsewhere, and what this replica holds there (a hole or a divergent log?).
        let elsewhere = '';
        try {
          const here = await replicaValues(name);
          const byPos = new Map([...here].map(([v, pos]) => [pos, v]));
          for (const other of PODS.filter((p) => p !== name)) {
            const there = await replicaValues(other);
            const lost = acked.filter((v) => !there.has(v)).length;
            elsewhere += ` | ${other}: missing ${lost}; ${missing.slice(0, 3).map((v) => `${v} at ${there.get(v) ?? '-'} (here: ${there.get(v) ? byPos.get(there.get(v)!) ?? 'nothing' : '?'})`).join(', ')}`;
          }
        } catch (err) {
          elsewhere = ` (comparison failed: ${(err as Error).message})`;
        }
        let where = '';
        try {
          const c = await new AdminClient(`${podIp(name)}:1992`, { timeoutMs: 5_000 }).cluster();
          where = JSON.stringify(c.topics.find((t) => t.name === TOPIC)?.partitions.map((p) => [p.partition, p.leader, p.logEndOffset, p.highWatermark]));
        } catch (err) {
          where = (err as Error).message;
        }
        throw new Error(`${(e as Error).message}; missing ${missing.length}: ${missing.slice(0, 10).join(', ')}; ${name} [partition, leader, LEO, HW]: ${where}; views: ${await diag()}; elsewhere${elsewhere}`);
      });
    }
  }

  beforeAll(async () => {
    k = await startStandIn();
    env = toolEnv(k.kubeconfigPath);
    expect((await kubectl(env, ['apply', '-f', path.join(REPO_ROOT, 'crds')])).code).toBe(0);
    op = await runOperator({ kubeconfig: k.kubeconfigPath, namespaces: [NS], healthPort: 0, metricsPort: 0, leaderElect: false, leaseName: 'lance-operator', brokerBindAddress: 'podIP', nodeLostGraceSeconds: 3 });
    expect((await kubectl(env, ['apply', '-f', path.join(REPO_ROOT, 'examples', 'cluster.yaml')])).code).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await op?.stop();
    const pids = k ? PODS.flatMap((p) => k.kubelet?.podRuntime(NS, p)?.pids ?? []) : [];
    await k?.stop();
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  }, 120_000);

  it('3 pods Ready; kubectl get lc shows Running 3/3, a Leader and a Term; members from /v1/cluster; kafkajs through the client Service', async () => {
    await waitFor('Running 3/3 with a leader', running3, 180_000, 500);
    expect((await kubectl(env, ['get', 'lc'])).stdout).toMatch(/demo\s+Running\s+3\/3\s+demo-\d\s+\d+/);
    const s = (await lc()).status!;
    expect(s.members?.map((m) => [m.pod, m.nodeId])).toEqual([['demo-0', 0], ['demo-1', 1], ['demo-2', 2]]);
    expect(s.members?.filter((m) => m.role === 'Leader').map((m) => m.pod)).toEqual([s.leader]);
    expect(s.members?.every((m) => m.term === s.controllerTerm && m.lag !== undefined && !m.fenced)).toBe(true);
    expect(condition(s, 'Ready')).toMatchObject({ status: 'True' });
    expect(condition(s, 'SplitBrain')).toMatchObject({ status: 'False' });

    const client = await kafka('acceptance');
    const admin = client.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3 }], waitForLeaders: true });
    const producer = client.producer();
    await producer.connect();
    for (let i = 0; i < 30; i++) {
      const value = `first-${i}`;
      await producer.send({ topic: TOPIC, acks: -1, messages: [{ key: value, value }] });
      acked.push(value);
    }
    await producer.disconnect();
    const offsets = await admin.fetchTopicOffsets(TOPIC);
    expect(offsets.reduce((a, o) => a + Number(o.high), 0)).toBe(30);
    await admin.disconnect();
    await expectNothingLost();
  }, 300_000);

  it('a killed broker process (the leader) is restarted by the kubelet; the cluster is Running again, nothing lost', async () => {
    const leader = (await lc()).status!.leader!;
    const bg = await startProducer('kill');
    const before = bg.count();
    k.faults.killPod(NS, leader);
    await waitFor('restarted and Ready', async () => { const cs = (await pod(leader)).status.containerStatuses?.[0]; return (cs?.restartCount ?? 0) >= 1 && cs?.ready; }, 120_000, 500);
    await waitFor('Running 3/3', running3, 120_000, 500);
    await waitFor('producer made progress after the kill', () => bg.count() > before + 10, 120_000, 200);
    const r = await bg.stop();
    expect(r.acked).toBeGreaterThan(10);
    await expectNothingLost();
  }, 400_000);

  it('a broker whose disk is wiped comes back empty and is refilled from the others; nothing lost', async () => {
    const leader = (await lc()).status!.leader!;
    const victim = PODS.find((p) => p !== leader)!;
    const bg = await startProducer('wipe');
    await waitFor('some load', () => bg.count() > 5, 60_000, 100);
    k.faults.deletePvcData(NS, `data-${victim}`);
    k.faults.killPod(NS, victim);
    await waitFor('restarted and Ready', async () => { const cs = (await pod(victim)).status.containerStatuses?.[0]; return (cs?.restartCount ?? 0) >= 1 && cs?.ready; }, 120_000, 500);
    await waitFor('Running 3/3', running3, 120_000, 500);
    const r = await bg.stop();
    expect(r.acked).toBeGreaterThan(5);
    await expectNothingLost();
  }, 400_000);

  it('annotating the leader with lance.dev/replace=true: leadership is transferred first, then its pod and PVC are replaced; caught up, nothing lost', async () => {
    const leader = (await lc()).status!.leader!;
    const uid = (await pod(leader)).metadata.uid;
    const oldId = (await lc()).status!.members!.find((m) => m.pod === leader)!.nodeId!;
    const bg = await startProducer('replace');
    expect((await kubectl(env, ['annotate', 'pod', leader, 'lance.dev/replace=true'])).code).toBe(0);
    await waitFor('pod replaced', async () => { try { return (await pod(leader)).metadata.uid !== uid; } catch { return false; } }, 120_000, 500);
    await waitFor('Running 3/3', running3, 180_000, 500);
    const ev = await events();
    expect(ev.some((e) => e.reason === 'LeaderTransfer' && e.message.includes(`replacement: leadership ${leader} →`))).toBe(true);
    expect(ev.some((e) => e.reason === 'ReplacingNode' && e.message.includes(leader))).toBe(true);
    expect((await lc()).status!.leader).not.toBe(leader);
    expect((await pod(leader)).metadata.labels).not.toHaveProperty('lance.dev/replace');
    await expectReplacedWithNewId(leader, oldId, usedIds);
    const ev2 = await events();
    expect(ev2.some((e) => e.reason === 'MemberRemoving' && e.message.includes(`removing node ${oldId}`))).toBe(true);
    expect(ev2.some((e) => e.reason === 'NodeReplaced' && e.message.includes(`${leader} replaced: node ${oldId} removed`))).toBe(true);
    const r = await bg.stop();
    expect(r.acked).toBeGreaterThan(0);
    await expectNothingLost();
  }, 400_000);

  it('deleting a pod\'s PVC: the node is replaced under a NEW node id (old id removed first), caught up, nothing lost', async () => {
    await waitFor('Running 3/3', running3, 120_000, 500);
    const leader = await metaLeader();
    const victim = PODS.find((p) => p !== leader)!;
    const uid = (await pod(victim)).metadata.uid;
    const oldId = (await lc()).status!.members!.find((m) => m.pod === victim)!.nodeId!;
    const bg = await startProducer('pvc');
    await waitFor('some load', () => bg.count() > 5, 60_000, 100);
    // The claim stays Terminating while the pod uses it (pvc-protection): the operator sees the volume lost.
    expect((await kubectl(env, ['delete', 'pvc', `data-${victim}`, '--wait=false'])).code).toBe(0);
    await waitFor('pod replaced', async () => { try { return (await pod(victim)).metadata.uid !== uid; } catch { return false; } }, 180_000, 500).catch(async (e: unknown) => {
      const s = (await lc()).status;
      throw new Error(`${(e as Error).message}: replacement ${JSON.stringify(s?.replacement)}, progressing ${JSON.stringify(condition(s, 'Progressing'))}; events ${(await events()).slice(-10).map((x) => `${x.reason}: ${x.message}`).join(' | ')}`);
    });
    await expectReplacedWithNewId(victim, oldId, usedIds);
    await waitFor('Running 3/3', running3, 180_000, 500);
    expect((await events()).some((e) => e.reason === 'ReplacingNode' && e.message.includes(`replacing ${victim} (pvc-lost): node ${oldId} → new node`))).toBe(true);
    const r = await bg.stop();
    expect(r.acked).toBeGreaterThan(5);
    await expectNothingLost();
  }, 400_000);

  it('a node lost beyond the grace period: its broker pod is force-deleted and replaced elsewhere under a NEW node id; nothing lost', async () => {
    await waitFor('Running 3/3', running3, 120_000, 500);
    const leader = await metaLeader();
    const victim = [...PODS].reverse().find((p) => p !== leader)!;
    const uid = (await pod(victim)).metadata.uid;
    const oldId = (await lc()).status!.members!.find((m) => m.pod === victim)!.nodeId!;
    const node = k.faults.nodeOf(NS, victim);
    const bg = await startProducer('nodelost');
    await waitFor('some load', () => bg.count() > 5, 60_000, 100);
    k.faults.loseNode(node);
    try {
      await waitFor('pod replaced on another node', async () => { try { const p = await pod(victim); return p.metadata.uid !== uid && k.faults.nodeOf(NS, victim) !== node; } catch { return false; } }, 180_000, 500).catch(async (e: unknown) => {
        const s = (await lc()).status;
        throw new Error(`${(e as Error).message}: replacement ${JSON.stringify(s?.replacement)}, progressing ${JSON.stringify(condition(s, 'Progressing'))}; events ${(await events()).slice(-10).map((x) => `${x.reason}: ${x.message}`).join(' | ')}`);
      });
      await expectReplacedWithNewId(victim, oldId, usedIds);
      await waitFor('Running 3/3', running3, 180_000, 500);
      expect((await events()).some((e) => e.reason === 'ReplacingNode' && e.message.includes(`replacing ${victim} (node-lost): node ${oldId} → new node`))).toBe(true);
    } finally {
      k.faults.restoreNode(node);
    }
    const r = await bg.stop();
    expect(r.acked).toBeGreaterThan(5);
    await expectNothingLost();
  }, 400_000);

  it('partitioning the leader: the majority elects, the operator fences the stale leader (Event, SplitBrain), unfences after the heal; acks=all loses nothing', async () => {
    await waitFor('Running 3/3', running3, 120_000, 500);
    const leader = await metaLeader();
    const bg = await startProducer('partition');
    await waitFor('some load', () => bg.count() > 5, 60_000, 100);
    // Raft and Kafka traffic of the leader is cut; its admin port (probes, operator) stays reachable.
    k.faults.isolatePod(NS, leader, [1993, 9092]);
    try {
      await waitFor('a new leader elected by the majority', async () => { const l = (await lc()).status?.leader; return l !== undefined && l !== leader; }, 60_000, 300).catch(async (e: unknown) => {
        throw new Error(`${(e as Error).message} (isolated ${leader}): status ${JSON.stringify((await lc()).status)}; views: ${await diag()}`);
      });
      await waitFor('stale leader fenced', async () => {
        const s = (await lc()).status;
        return condition(s, 'SplitBrain')?.status === 'True' && s?.members?.find((m) => m.pod === leader)?.fenced === true;
      }, 60_000, 300);
      expect((await pod(leader)).metadata.labels['lance.dev/fenced']).toBe('true');
      const ep = await getJson<{ subsets?: { addresses?: { ip: string }[] }[] }>(['endpoints', 'demo']);
      expect((ep.subsets ?? []).flatMap((s) => s.addresses ?? []).map((a) => a.ip)).not.toContain(podIp(leader));
      const ev = await events();
      expect(ev.some((e) => e.reason === 'SplitBrain' && e.message.includes(leader))).toBe(true);
      expect(ev.some((e) => e.reason === 'Fenced' && e.message.includes(leader))).toBe(true);
      const during = bg.count();
      await waitFor('producer keeps working during the partition', () => bg.count() > during + 5, 60_000, 200).catch(async (e: unknown) => {
        let direct = '';
        const l = (await lc()).status?.leader;
        try {
          const r = await new AdminClient(`${podIp(l!)}:1992`, { timeoutMs: 5_000 }).produce(TOPIC, { records: [{ value: 'probe' }] });
          direct = `admin produce on ${l}: ${JSON.stringify(r.partitions)}`;
        } catch (err) {
          direct = `admin produce on ${l} failed: ${(err as Error).message}`;
        }
        throw new Error(`${(e as Error).message}: ${bg.count() - during} acks (${bg.state()}); ${direct}; views: ${await diag()}`);
      });
    } finally {
      k.faults.healPod(NS, leader);
    }
    await waitFor('healed and unfenced', async () => {
      const s = (await lc()).status;
      return condition(s, 'SplitBrain')?.status === 'False' && condition(s, 'Fenced')?.status === 'False' && s?.members?.every((m) => !m.fenced);
    }, 120_000, 500);
    expect((await events()).some((e) => e.reason === 'Unfenced' && e.message.includes(leader))).toBe(true);
    await waitFor('Running 3/3', running3, 120_000, 500);
    const r = await bg.stop();
    expect(r.acked).toBeGreaterThan(5);
    await expectNothingLost();
  }, 400_000);

  it('image change: followers restarted first, the leader last after a leadership transfer; the producer keeps working', async () => {
    await waitFor('Running 3/3', running3, 120_000, 500);
    const bg = await startProducer('rollout');
    await waitFor('some load', () => bg.count() > 5, 60_000, 100);
    const samples: number[] = [];
    expect((await kubectl(env, ['patch', 'lc', 'demo', '--type', 'merge', '-p', '{"spec":{"image":"lance/broker:v2"}}'])).code).toBe(0);
    await waitFor('rollout complete', async () => {
      samples.push(bg.count());
      const s = (await lc()).status;
      return s?.phase === 'Running' && s.currentImage === 'lance/broker:v2' && s.ready === '3/3';
    }, 600_000, 1_000);
    const s = (await lc()).status!;
    expect(s.rollout?.order).toHaveLength(3);
    for (const p of PODS) expect((await pod(p)).spec.containers[0]!.image).toBe('lance/broker:v2');
    const ev = await events();
    // The leader goes last, and only after a transfer: the pod restarted last is the one leadership was moved away from.
    const transfer = ev.find((e) => e.reason === 'LeaderTransfer' && e.message.startsWith('rolling update: leadership'));
    expect(transfer, JSON.stringify(ev.map((e) => `${e.reason}: ${e.message}`))).toBeDefined();
    expect(/leadership (\S+) →/.exec(transfer!.message)?.[1]).toBe(s.rollout!.order[2]);
    expect(ev.some((e) => e.reason === 'LeaderRestartedWithoutTransfer')).toBe(false);
    expect(ev.some((e) => e.reason === 'RolloutComplete')).toBe(true);
    // Kept working: acknowledgements kept coming in throughout the rollout.
    const done = bg.count();
    await waitFor('producer still working after the rollout', () => bg.count() > done + 5, 60_000, 200);
    const r = await bg.stop();
    expect(r.acked).toBeGreaterThan(samples[0]! + 10);
    await expectNothingLost();
  }, 700_000);

  it('scale 3 → 5 → 3 → 5 → 3 through the admin API\'s membership changes, one at a time, every added broker under a never-used id; data intact', async () => {
    const bg = await startProducer('scale');
    await waitFor('some load', () => bg.count() > 5, 60_000, 100);
    const next = (await lc()).status!.nextNodeId!;
    expect(usedIds.has(next)).toBe(false);
    // 3 → 5 → 3, then 5 again (replicas must be odd): the claims of demo-3/4 from the first round hold retired
    // brokers' data and must be replaced; the new brokers there get new ids again.
    for (const n of [5, 3, 5, 3]) {
      expect((await kubectl(env, ['patch', 'lc', 'demo', '--type', 'merge', '-p', JSON.stringify({ spec: { replicas: n } })])).code).toBe(0);
      await waitFor(`Running ${n}/${n}`, async () => {
        const s = (await lc()).status;
        return s?.phase === 'Running' && s.ready === `${n}/${n}` && s.members?.length === n && s.members.every((m) => m.ready && m.role !== 'Unknown');
      }, 600_000, 1_000);
    }
    const ev = await events();
    // New, never-used ids for the added ordinals; the highest ordinals' members were removed first.
    const added = ev.filter((e) => e.reason === 'MemberAdded' && e.message.startsWith('scaling')).map((e) => e.message);
    expect(added).toHaveLength(4);
    expect(added).toEqual(expect.arrayContaining([0, 1, 2, 3].map((i) => expect.stringContaining(`node ${next + i} (demo-${3 + (i % 2)})`))));
    for (const claim of ['data-demo-3', 'data-demo-4']) expect(ev.some((e) => e.reason === 'StaleClaimDeleted' && e.message.includes(claim))).toBe(true);
    const removed = ev.filter((e) => e.reason === 'MemberRemoved').map((e) => e.message);
    for (const i of [0, 1, 2, 3]) expect(removed.some((m) => m.includes(`node ${next + i} left every group; removing demo-${3 + (i % 2)}`))).toBe(true);
    const s = (await lc()).status!;
    expect(Object.keys(s.nodeIds ?? {}).sort()).toEqual(['0', '1', '2']);
    expect(s.nextNodeId).toBe(next + 4);
    const ms = await membersList();
    for (const i of [0, 1, 2, 3]) expect(ms.find((m) => m.nodeId === next + i)?.state ?? 'removed').toBe('removed');
    // The founders never change; the brokers' config did not roll while scaling.
    expect((await getJson<{ status: { bootstrapVoters?: number[] } }>(['lc', 'demo'])).status.bootstrapVoters).toEqual([0, 1, 2]);
    const r = await bg.stop();
    expect(r.acked).toBeGreaterThan(5);
    await expectNothingLost();
  }, 1_300_000);

  it('replicas below the topics\' replication factor is refused with a condition and an event', async () => {
    expect((await kubectl(env, ['patch', 'lc', 'demo', '--type', 'merge', '-p', '{"spec":{"replicas":1}}'])).code).toBe(0);
    await waitFor('ScaleRefused', async () => condition((await lc()).status, 'Progressing')?.reason === 'ScaleRefused', 60_000, 500);
    expect((await events()).some((e) => e.reason === 'ScaleRefused' && e.message.includes('replication factor 3'))).toBe(true);
    expect((await getJson<{ spec: { replicas: number } }>(['statefulset', 'demo'])).spec.replicas).toBe(3);
  }, 120_000);
});
