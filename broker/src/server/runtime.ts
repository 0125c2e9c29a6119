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
  try {
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
