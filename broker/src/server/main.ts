/**
 * `lance` entry point (bin/lance.js imports this file): parse flags → read config → start the broker → wait for
 * SIGTERM/SIGINT → graceful shutdown → exit 0. Usage and config errors print ONE line and exit 2.
 * `lance dev` (npm start) is a standalone broker on 127.0.0.1 with data under ./.data/ (or $LANCE_DATA_DIR).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import pino from 'pino';
import { isLanceError, ioError, LanceError } from '../common/errors.ts';
import { parseConfigText, parseServerArgs, resolveConfig, SERVER_USAGE, type RawConfig } from './config.ts';
import { startBroker } from './runtime.ts';
import { resolvePeers, startClusterBroker } from './cluster-runtime.ts';
import { runDevCluster } from './dev-cluster.ts';
import type { ClusterPeer } from '../cluster/config.ts';
import type { LanceConfig } from './config.ts';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function fail(e: unknown): never {
  const line = isLanceError(e) ? `lance: ${e.code}: ${e.message}` : `lance: INTERNAL: ${e instanceof Error ? e.message : String(e)}`;
  process.stderr.write(line.replace(/\n/g, ' ') + '\n');
  // A corrupt data dir is "a problem found" (1, like lnc); everything else a user can cause is 2.
  process.exit(isLanceError(e, 'CORRUPT') ? 1 : 2);
}

async function main(): Promise<void> {
  if (process.argv[2] === 'dev-cluster') {
    await runDevCluster(version());
    return;
  }
  let args;
  try {
    args = parseServerArgs(process.argv.slice(2));
  } catch (e) {
    fail(e);
  }
  if (args.help) {
    process.stdout.write(SERVER_USAGE + '\n');
    return;
  }
  const dev = args.command === 'dev';
  let fileRaw: RawConfig = {};
  if (dev) {
    // lowest precedence: the dev defaults (file, env and flags still override them)
    fileRaw = {
      standalone: true,
      dataDir: path.resolve('.data'),
      listeners: { kafka: { host: '127.0.0.1' }, admin: { host: '127.0.0.1' }, raft: { host: '127.0.0.1' } },
    };
  }
  let config;
  let peers: ClusterPeer[] = [];
  try {
    if (args.configFile !== undefined) {
      let text: string;
      try {
        text = await readFile(args.configFile, 'utf8');
      } catch (e) {
        throw ioError('--config', args.configFile, e);
      }
      const parsed = parseConfigText(text, args.configFile);
      fileRaw = dev ? { ...fileRaw, ...parsed } : parsed;
    }
    config = resolveConfig({ fileRaw, env: process.env, overrides: args.overrides });
    // cluster mode: peers configured and not forced standalone by --standalone / LANCE_STANDALONE=true
    peers = dev ? [] : await resolvePeers(config);
    const forcedStandalone = args.overrides.standalone === true || process.env.LANCE_STANDALONE === 'true';
    if (forcedStandalone) peers = [];
    if (!config.standalone && peers.length === 0) {
      throw new LanceError('INVALID_CONFIG', 'standalone: false needs cluster.peers (or cluster.peersFile) listing the founding members', { key: 'cluster.peers' });
    }
  } catch (e) {
    fail(e);
  }
  if (peers.length > 0) {
    await runCluster({ ...config, dataDir: path.resolve(config.dataDir) }, peers);
    return;
  }

  const logger = pino({ level: config.log.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
  // Signals are handled from the start: a SIGTERM during storage recovery stops the broker as soon as it is open.
  let running: Awaited<ReturnType<typeof startBroker>> | undefined;
  let stopRequested = false;
  let stopping = false;
  const shutdown = (): void => {
    if (stopping || !running) return;
    stopping = true;
    running.close().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: string): void => {
    if (stopRequested) {
      logger.warn({ signal }, 'second signal: exiting without a clean shutdown');
      process.exit(1);
    }
    stopRequested = true;
    logger.info({ signal }, running ? 'shutdown requested' : 'shutdown requested during startup; stopping once storage is open');
    shutdown();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  try {
    running = await startBroker({ ...config, dataDir: path.resolve(config.dataDir) }, logger, version());
  } catch (e) {
    logger.error({ err: e }, 'lance failed to start');
    fail(e);
  }
  if (stopRequested) {
    shutdown();
    return;
  }
  const kafkaAddr = `${running.kafka.advertisedHost}:${running.kafka.advertisedPort}`;
  const adminHost = running.admin.host === '0.0.0.0' ? running.kafka.advertisedHost : running.admin.host;
  const adminUrl = `http://${adminHost}:${running.admin.port}`;
  logger.info({
    kafkaPort: running.kafka.port, adminPort: running.admin.port, bootstrap: kafkaAddr, admin: adminUrl,
    clusterId: running.identity.clusterId, nodeId: running.identity.nodeId, readOnly: config.readOnly,
  }, 'lance ready');
  if (dev) {
    process.stderr.write([
      '',
      `Lance ${version()} (standalone${config.readOnly ? ', READ-ONLY' : ''}) — data in ${path.resolve(config.dataDir)}`,
      `  Kafka bootstrap: ${kafkaAddr}`,
      `  admin:           ${adminUrl}   (lnc list-topics --server ${adminHost}:${running.admin.port})`,
      '  stop with Ctrl-C',
      '',
    ].join('\n') + '\n');
  }
}

/** Cluster mode: same signal handling as standalone (first signal = graceful stop, second = exit 1). */
async function runCluster(config: LanceConfig, peers: ClusterPeer[]): Promise<void> {
  const logger = pino({ level: config.log.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
  let running: Awaited<ReturnType<typeof startClusterBroker>> | undefined;
  let stopRequested = false;
  const stop = (): void => {
    if (!running) return;
    running.close().then(() => process.exit(0), (e: unknown) => {
      logger.error({ err: e }, 'shutdown failed');
      process.exit(1);
    });
  };
  const onSignal = (signal: string): void => {
    if (stopRequested) process.exit(1);
    stopRequested = true;
    logger.info({ signal }, 'shutdown requested');
    stop();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  try {
    running = await startClusterBroker(config, peers, logger, version());
  } catch (e) {
    logger.error({ err: e }, 'lance failed to start');
    fail(e);
  }
  if (stopRequested) {
    stop();
    return;
  }
  logger.info({
    kafkaPort: running.kafka.port, adminPort: running.admin.port, raftPort: running.raft.port, bootstrap: `${running.kafka.advertisedHost}:${running.kafka.advertisedPort}`,
    clusterId: running.identity.clusterId, nodeId: running.identity.nodeId, peers: peers.map((p) => p.nodeId),
  }, 'lance ready');
}

process.on('unhandledRejection', (e) => {
  process.stderr.write(`lance: INTERNAL: unhandled rejection: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});

await main();
