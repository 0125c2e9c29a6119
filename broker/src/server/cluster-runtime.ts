/**
 * Composes one broker in CLUSTER mode (cluster.peers set): data dir lock → node identity → ClusterBroker (metadata
 * group + partition groups + raft transport) → admin API → Kafka listener. The ports come from this node's entry in
 * the peers list (the other brokers dial them and Kafka clients are told them). close(): stop Kafka and admin, then
 * the raft host (pending persistence finishes) and every log.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Counter } from 'prom-client';
import { ioError, LanceError } from '../common/errors.ts';
import { mkdirDurable } from '../common/fsutil.ts';
import type { Logger } from '../common/log.ts';
import { startAdminServer, type AdminServerHandle, type AdminService } from '../admin/server.ts';
import { startKafkaServer, type KafkaServer } from '../kafka/server.ts';
import { ClusterBroker } from '../cluster/cluster-broker.ts';
import { ClusterGroups } from '../cluster/cluster-groups.ts';
import { bootstrapPlan, parsePeersFile, resolveNodeId, validatePeers, type ClusterPeer } from '../cluster/config.ts';
import type { LanceConfig } from './config.ts';
import { acquireDataDirLock } from './data-dir-lock.ts';
import { BrokerMetrics } from './metrics.ts';
import { ensureNodeIdentity, type NodeIdentity } from './node-identity.ts';
import { startClusterTiering, type ClusterTiering } from '../tiering/cluster-dr.ts';
import { drSettings } from '../tiering/standalone-dr.ts';
import { clusterColdStart, type ClusterColdStartResult } from '../tiering/cluster-cold-start.ts';
import { readClusterRestoreInfo } from '../tiering/cluster-restore.ts';
import { META_GROUP } from '../cluster/metadata.ts';

export interface RunningClusterBroker {
  identity: NodeIdentity;
  broker: ClusterBroker;
  metrics: BrokerMetrics;
  kafka: { host: string; port: number; advertisedHost: string; advertisedPort: number };
  admin: { host: string; port: number };
  raft: { host: string; port: number };
  close(): Promise<void>;
}

/** The peers from `cluster.peers` or `cluster.peersFile`; [] = standalone. */
export async function resolvePeers(config: LanceConfig): Promise<ClusterPeer[]> {
  if (config.cluster.peersFile !== undefined) {
    let text: string;
    try {
      text = await readFile(config.cluster.peersFile, 'utf8');
    } catch (e) {
      throw ioError('cluster.peersFile', config.cluster.peersFile, e);
    }
    return parsePeersFile(text, config.cluster.peersFile);
  }
  validatePeers(config.cluster.peers, 'cluster.peers');
  return config.cluster.peers;
}

/** Without a configured clusterId every founder derives the same one from the peer list. */
export function derivedClusterId(peers: readonly ClusterPeer[]): string {
  const canon = JSON.stringify([...peers].sort((a, b) => a.nodeId - b.nodeId).map((p) => [p.nodeId, p.host, p.raftPort]));
  return `lance-${createHash('sha256').update(canon).digest('hex').slice(0, 16)}`;
}

function adminService(b: ClusterBroker, groups?: ClusterGroups, restoredFrom: string | null = null): AdminService {
  return {
    ...(groups ? { groups: groups.adminApi() } : {}),
    // what a cold-starting peer asks (broker/src/tiering/cluster-cold-start.ts): live state = a metadata term or log
    node: () => {
      const st = b.host.node(META_GROUP)?.status();
      return { state: 'running', nodeId: b.nodeId, clusterId: b.clusterId, metaTerm: st?.term ?? 0, metaLastIndex: st?.lastIndex ?? 0, restoredFrom };
    },
    readiness: () => b.readiness(),
    cluster: () => b.clusterView(),
    listTopics: () => b.adminListTopics(),
    getTopic: (name) => b.adminGetTopic(name),
    createTopic: (req) => b.adminCreateTopic(req),
    deleteTopic: (name) => b.adminDeleteTopic(name),
    produce: (topic, req) => b.adminProduce(topic, req),
    fetch: (topic, partition, q, signal) => b.adminFetch(topic, partition, q, signal),
    clusterAdmin: {
      members: (req) => b.members(req),
      transferLeader: (req) => b.transferLeader(req),
      setFenced: (f) => b.setFenced(f),
      listMembers: () => b.listMembers(),
      addMember: (id, ep) => b.addMember(id, ep),
      removeMember: (id) => b.removeMember(id),
    },
  };
}

export async function startClusterBroker(config: LanceConfig, peers: ClusterPeer[], logger: Logger, version: string): Promise<RunningClusterBroker> {
  // the operator's peers.yaml may map this pod to a node id of its own (a replacement gets a new id)
  const podNodeId = resolveNodeId(config.cluster, peers, config.nodeId);
  if (podNodeId !== config.nodeId) config = { ...config, nodeId: podNodeId };
  const me = peers.find((p) => p.nodeId === config.nodeId);
  if (!me) {
    throw new LanceError('INVALID_CONFIG', `nodeId: ${config.nodeId} is not one of cluster.peers (${peers.map((p) => p.nodeId).join(', ')}); set LANCE_NODE_ID`, { key: 'nodeId' });
  }
  const plan = bootstrapPlan(config.cluster, peers, config.nodeId);
  await mkdirDurable(config.dataDir);
  const lock = await acquireDataDirLock(config.dataDir);
  let identity: NodeIdentity;
  let coldStart: ClusterColdStartResult;
  try {
    // derived from the founders' entries only, so a joining node (whose peers list also names itself) agrees
    const clusterId = config.clusterId ?? derivedClusterId(peers.filter((p) => plan.founders.includes(p.nodeId)));
    // an empty data dir + restore points in the bucket: restore when the whole cluster is gone (the peers agree)
    coldStart = await clusterColdStart({
      dataDir: config.dataDir, storeConfig: config.objectStore, enabled: config.tiering.coldStartRestore, clusterId, nodeId: config.nodeId,
      peers: peers.filter((p) => p.nodeId !== config.nodeId).map((p) => ({ nodeId: p.nodeId, host: p.host, adminPort: p.adminPort })),
      admin: { host: config.listeners.admin.host, port: me.adminPort }, peerWaitMs: config.tiering.coldStartPeerWaitMs, logger: logger.child({ node: config.nodeId }),
    });
    identity = await ensureNodeIdentity(config.dataDir, { clusterId, nodeId: config.nodeId });
  } catch (e) {
    await lock.release();
    throw e;
  }
  const log = logger.child({ node: identity.nodeId });
  log.info({ clusterId: identity.clusterId, dataDir: config.dataDir, peers, version }, 'lance starting (cluster mode)');
  const metrics = new BrokerMetrics(version);
  const quarantineCounter = new Counter({
    name: 'lance_quarantined_entries_total', help: 'Raft entries truncated as divergent and moved to <data>/quarantine/',
    labelNames: ['group'], registers: [metrics.registry],
  });
  let broker: ClusterBroker | undefined;
  let admin: AdminServerHandle | undefined;
  let kafka: KafkaServer | undefined;
  let groups: ClusterGroups | undefined;
  let tiered: ClusterTiering | undefined;
  try {
    broker = await ClusterBroker.open({
      config, clusterId: identity.clusterId, nodeId: identity.nodeId, peers, logger: log, metrics, version,
      raftHost: config.listeners.raft.host, raftPort: me.raftPort, founders: plan.founders, bootstrap: plan.bootstrap,
      onQuarantine: (q) => quarantineCounter.inc({ group: q.group }, q.entries),
    });
    const b = broker;
    // consumer groups + producer ids through the metadata log; the coordinator runs on the controller
    groups = new ClusterGroups({ host: b, logger: log.child({ component: 'groups' }), registry: metrics.registry });
    const restoredFrom = (await readClusterRestoreInfo(config.dataDir))?.restorePoint ?? null;
    admin = await startAdminServer({
      host: config.listeners.admin.host, port: me.adminPort, service: adminService(b, groups, restoredFrom),
      metrics: { contentType: metrics.registry.contentType, metrics: async () => { b.updateGauges(); return metrics.registry.metrics(); } },
      logger: log.child({ component: 'admin' }),
      onRequest: (route, status) => metrics.adminRequests.inc({ route, status: String(status) }),
    });
    kafka = await startKafkaServer({
      groups,
      host: config.listeners.kafka.host, port: me.kafkaPort, backend: b, logger: log.child({ component: 'kafka' }),
      maxFrameBytes: config.maxFrameBytes, metrics: metrics.kafkaHooks(),
    }).catch((e: unknown) => {
      const code = (e as NodeJS.ErrnoException).code;
      throw new LanceError('IO', `kafka listener: cannot listen on ${config.listeners.kafka.host}:${me.kafkaPort}: ${code ?? String(e)}`, { port: me.kafkaPort }, { cause: e });
    });
    // object store: partition leaders upload sealed segments, the controller writes restore points
    if (config.objectStore) {
      tiered = startClusterTiering({
        source: b, storeConfig: config.objectStore, clusterId: identity.clusterId, nodeId: identity.nodeId, logger: log, registry: metrics.registry,
        uploadIntervalMs: config.tiering.uploadIntervalMs, cacheBytes: config.tiering.cacheBytes, dr: drSettings(config.tiering, process.env),
      });
      if (coldStart.restored) tiered.dr?.metrics.recoverySeconds.set(coldStart.seconds);
    }
  } catch (e) {
    await tiered?.stop().catch(() => undefined);
    await admin?.close().catch(() => undefined);
    await groups?.close().catch(() => undefined);
    await broker?.close().catch(() => undefined);
    await lock.release();
    throw e;
  }
  broker.setKafkaEndpoint(me.host, kafka.port);
  broker.setAdminEndpoint(me.host, admin.port);
  const running = broker;
  const kafkaServer = kafka;
  const adminServer = admin;
  const groupLayer = groups;
  const tieredLayer = tiered;
  let closing: Promise<void> | undefined;
  return {
    identity, broker: running, metrics,
    kafka: { host: config.listeners.kafka.host, port: kafkaServer.port, advertisedHost: me.host, advertisedPort: me.kafkaPort },
    admin: { host: config.listeners.admin.host, port: adminServer.port },
    raft: { host: config.listeners.raft.host, port: running.raftPort },
    close(): Promise<void> {
      closing ??= (async () => {
        log.info('lance stopping');
        running.setKafkaDown();
        await Promise.all([kafkaServer.close(), adminServer.close()]);
        await groupLayer.close().catch((e: unknown) => log.error({ err: e }, 'closing the group layer failed'));
        await tieredLayer?.stop().catch((e: unknown) => log.error({ err: e }, 'stopping tiering failed'));
        try {
          await running.close();
        } finally {
          await lock.release();
        }
        log.info('lance stopped');
      })();
      return closing;
    },
  };
}
