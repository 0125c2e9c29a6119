/**
 * Composes one running broker: node identity → admin API (answers /health/live during recovery) → storage
 * (LocalBroker.open runs crash recovery) → Kafka listener. close() is the graceful shutdown: stop accepting
 * (Kafka and admin), let in-flight admin requests finish, then flush + fsync + close every partition log.
 */
import { hostname } from 'node:os';
import { LanceError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { startAdminServer, type AdminServerHandle, type AdminService } from '../admin/server.ts';
import { startKafkaServer, type KafkaServer } from '../kafka/server.ts';
import { advertisedHost, type LanceConfig } from './config.ts';
import { LocalBroker } from './local-broker.ts';
import { BrokerMetrics } from './metrics.ts';
import { mkdirDurable } from '../common/fsutil.ts';
import { acquireDataDirLock } from './data-dir-lock.ts';
import { ensureNodeIdentity, type NodeIdentity } from './node-identity.ts';
import { startStandaloneGroups } from '../groups/standalone.ts';
import type { GroupService } from '../groups/service.ts';
import { groupsAdmin, type GroupsAdmin } from '../groups/admin.ts';
import { coldStartRestore, collectStandaloneSnapshot, drSettings, startMetadataDr, type RunningDr } from '../tiering/standalone-dr.ts';
import { DrMetrics } from '../tiering/metadata-dr.ts';
import type { RestoreReport } from '../tiering/restore.ts';

export interface RunningBroker {
  identity: NodeIdentity;
  broker: LocalBroker;
  metrics: BrokerMetrics;
  kafka: { host: string; port: number; advertisedHost: string; advertisedPort: number };
  admin: { host: string; port: number };
  /** graceful shutdown; idempotent */
  close(): Promise<void>;
}

function starting(): LanceError {
  return new LanceError('NOT_LEADER', 'broker is starting (storage recovery in progress); retry shortly');
}

/** Admin routes before the broker is open answer "starting" (503), except health and metrics. */
function adminService(get: () => LocalBroker | undefined, getGroups: () => GroupsAdmin | undefined = () => undefined): AdminService {
  const b = (): LocalBroker => get() ?? (() => { throw starting(); })();
  const g = (): GroupsAdmin => getGroups() ?? (() => { throw starting(); })();
  return {
    groups: { list: () => g().list(), describe: (name) => g().describe(name), resetOffsets: (name, req) => g().resetOffsets(name, req) },
    readiness: () => get()?.readiness() ?? { storage: false, kafka: false },
    cluster: () => b().clusterView(),
    listTopics: () => b().adminListTopics(),
    getTopic: (name) => b().adminGetTopic(name),
    createTopic: (req) => b().adminCreateTopic(req),
    deleteTopic: (name) => b().adminDeleteTopic(name),
    produce: (topic, req) => b().adminProduce(topic, req),
    fetch: (topic, partition, q, signal) => b().adminFetch(topic, partition, q, signal),
  };
}

export async function startBroker(config: LanceConfig, logger: Logger, version: string): Promise<RunningBroker> {
  await mkdirDurable(config.dataDir);
  const lock = await acquireDataDirLock(config.dataDir);
  let identity: NodeIdentity;
  let restored: RestoreReport | null = null;
  const dr = drSettings(config.tiering, process.env);
  try {
    // cold start: an empty data dir + a bucket with a restore point → restore before anything opens the dir
    restored = await coldStartRestore({
      dataDir: config.dataDir, storeConfig: config.objectStore, enabled: config.tiering.coldStartRestore,
      clusterId: config.clusterId, nodeId: config.nodeId, logger: logger.child({ node: config.nodeId }),
    });
    identity = await ensureNodeIdentity(config.dataDir, { clusterId: config.clusterId, nodeId: config.nodeId });
  } catch (e) {
    await lock.release();
    throw e;
  }
  const log = logger.child({ node: identity.nodeId });
  // the effective config (defaults < file < env < flags), so an operator can see what the process really runs with
  log.info({ clusterId: identity.clusterId, dataDir: config.dataDir, readOnly: config.readOnly, version, config }, 'lance starting');
  const metrics = new BrokerMetrics(version);
  let broker: LocalBroker | undefined;
  let admin: AdminServerHandle | undefined;
  let kafka: KafkaServer | undefined;
  let groups: GroupService | undefined;
  let groupsView: GroupsAdmin | undefined;
  let metaDr: RunningDr | undefined;
  const drMetrics = config.objectStore ? new DrMetrics(metrics.registry) : undefined;
  if (restored) drMetrics?.recoverySeconds.set(restored.durationMs / 1000);
  try {
    admin = await startAdminServer({
      host: config.listeners.admin.host,
      port: config.listeners.admin.port,
      service: adminService(() => broker, () => groupsView),
      metrics: {
        contentType: metrics.registry.contentType,
        metrics: async () => {
          broker?.updateGauges();
          return metrics.registry.metrics();
        },
      },
      logger: log.child({ component: 'admin' }),
      onRequest: (route, status) => metrics.adminRequests.inc({ route, status: String(status) }),
    });
    broker = await LocalBroker.open({ config, clusterId: identity.clusterId, nodeId: identity.nodeId, logger: log, metrics, version });
    const openBroker = broker;
    groups = await startStandaloneGroups(config.dataDir, openBroker, metrics.registry, log.child({ component: 'groups' }));
    groupsView = groupsAdmin(groups, {
      partitionCount: (t) => openBroker.getTopic(t)?.partitions.length,
      highWatermarkOf: (t, p) => openBroker.highWatermarkOf(t, p),
      listOffsets: (t, p, ts) => openBroker.listOffsets(t, p, ts),
    });
    if (config.objectStore && dr.enabled) {
      const g = groups;
      metaDr = startMetadataDr({
        storeConfig: config.objectStore, registry: metrics.registry, logger: log, clusterId: identity.clusterId, nodeId: identity.nodeId,
        intervalMs: dr.intervalMs, retentionMs: dr.retentionMs, ...(drMetrics ? { metrics: drMetrics } : {}),
        collect: () => collectStandaloneSnapshot({
          dataDir: config.dataDir, clusterId: identity.clusterId, nodeId: identity.nodeId,
          highWatermarkOf: (t, p) => openBroker.highWatermarkOf(t, p),
          manifest: (t, p) => openBroker.tieredStorage?.manifest(t, p) ?? null,
          logStartOffset: async (t, p) => (await openBroker.listOffsets(t, p, -2)).offset,
          groups: () => g.list().map((x) => {
            const d = g.describe(x.groupId);
            return { groupId: x.groupId, protocolType: x.protocolType, generation: d.generation, offsets: d.offsets };
          }),
        }),
      });
    }
    kafka = await startKafkaServer({
      groups,
      host: config.listeners.kafka.host,
      port: config.listeners.kafka.port,
      backend: openBroker,
      logger: log.child({ component: 'kafka' }),
      maxFrameBytes: config.maxFrameBytes,
      metrics: metrics.kafkaHooks(),
    }).catch((e: unknown) => {
      const code = (e as NodeJS.ErrnoException).code;
      const { host, port } = config.listeners.kafka;
      const msg = code === 'EADDRINUSE'
        ? `kafka listener: port ${port} on ${host} is already in use (another broker running?); choose another with listeners.kafka.port / LANCE_KAFKA_PORT / --kafka-port`
        : `kafka listener: cannot listen on ${host}:${port}: ${code ?? String(e)}`;
      throw new LanceError('IO', msg, { host, port }, { cause: e });
    });
  } catch (e) {
    await metaDr?.stop().catch(() => undefined);
    await admin?.close().catch(() => undefined);
    await groups?.close().catch(() => undefined);
    await broker?.close().catch(() => undefined);
    await lock.release();
    throw e;
  }
  const advHost = advertisedHost(config, hostname());
  const advPort = config.listeners.kafka.advertisedPort ?? kafka.port;
  broker.setKafkaEndpoint(advHost, advPort);
  broker.setAdminEndpoint(config.listeners.admin.host, admin.port);
  const running = broker;
  const kafkaServer = kafka;
  const adminServer = admin;
  const groupService = groups;
  const metaDrRunning = metaDr;
  let closing: Promise<void> | undefined;
  return {
    identity,
    broker: running,
    metrics,
    kafka: { host: config.listeners.kafka.host, port: kafkaServer.port, advertisedHost: advHost, advertisedPort: advPort },
    admin: { host: config.listeners.admin.host, port: adminServer.port },
    close(): Promise<void> {
      closing ??= (async () => {
        log.info('lance stopping');
        running.setKafkaDown();
        // Stop taking new work first; then storage flushes and fsyncs everything that was appended.
        await Promise.all([kafkaServer.close(), adminServer.close()]);
        await metaDrRunning?.stop().catch((e: unknown) => log.error({ err: e }, 'stopping metadata DR failed'));
        await groupService?.close().catch((e: unknown) => log.error({ err: e }, 'closing the group coordinator failed'));
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
