import net from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../broker/src/common/log.ts';
import { KafkaWireClient } from '../../broker/src/kafka/client.ts';
import type { CreateTopicsResponse, FetchResponse } from '../../broker/src/kafka/protocol/messages.ts';
import { startKafkaServer, type KafkaServer } from '../../broker/src/kafka/server.ts';
import { validateConfig } from '../../broker/src/server/config.ts';
import { LocalBroker } from '../../broker/src/server/local-broker.ts';
import { removeDir, tempDataDir, waitFor } from './helpers/broker.ts';

/**
 * startKafkaServer in-process over the real LocalBroker (real storage), for what the spawned-process tests cannot
 * configure or observe: idle timeout, metrics hooks, close().
 */
describe('startKafkaServer (in-process, real LocalBroker)', () => {
  const dataDir = tempDataDir('lance-kafka-inproc-');
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = createLogger({ test: 'inproc' }, sink);
  const calls = { requests: [] as Array<[number, number, number, number]>, protocolErrors: [] as string[], opened: 0, closed: 0 };
  let broker: LocalBroker;
  let server: KafkaServer;

  beforeAll(async () => {
    const config = validateConfig({ dataDir, listeners: { kafka: { host: '127.0.0.1', port: 0 } } });
    broker = await LocalBroker.open({ config, clusterId: 'inproc-test', nodeId: 1, logger });
    server = await startKafkaServer({
      host: '127.0.0.1',
      port: 0,
      backend: broker,
      logger,
      maxFrameBytes: 64 * 1024,
      idleTimeoutMs: 300,
      metrics: {
        onRequest: (k, v, _ms, bytesIn, bytesOut) => calls.requests.push([k, v, bytesIn, bytesOut]),
        onProtocolError: (r) => calls.protocolErrors.push(r),
        onConnectionOpened: () => calls.opened++,
        onConnectionClosed: () => calls.closed++,
      },
    });
    broker.setKafkaEndpoint('127.0.0.1', server.port);
  });

  afterAll(async () => {
    await server?.close();
    await broker?.close();
    removeDir(dataDir);
  });

  it('reports every request to the metrics hook with API key, version and byte counts', async () => {
    const c = await KafkaWireClient.connect('127.0.0.1', server.port);
    await c.request(18, 3, { clientSoftwareName: 'x', clientSoftwareVersion: '1' });
    await c.request(3, 12, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
    c.close();
    const seen = calls.requests.filter(([k]) => k === 18 || k === 3);
    expect(seen.map(([k, v]) => [k, v])).toEqual([
      [18, 3],
      [3, 12],
    ]);
    for (const [, , bytesIn, bytesOut] of seen) {
      expect(bytesIn).toBeGreaterThan(10);
      expect(bytesOut).toBeGreaterThan(4);
    }
  });

  it('a frame above maxFrameBytes closes the connection, logs the reason and calls onProtocolError', async () => {
    const s = net.connect(server.port, '127.0.0.1');
    const closed = new Promise<void>((res) => s.on('close', () => res()));
    s.on('error', () => undefined);
    s.write(Buffer.from([0, 1, 0, 1])); // 65537 bytes > 64 KiB
    await closed;
    expect(calls.protocolErrors.some((r) => /frame size 65537 exceeds max frame size 65536/.test(r))).toBe(true);
    await waitFor('the log line', () => logLines.some((l) => l.includes('closing kafka connection') && l.includes('65537')));
  });

  it('an idle connection holding a partial frame is closed with a logged reason', async () => {
    const s = net.connect(server.port, '127.0.0.1');
    const closed = new Promise<void>((res) => s.on('close', () => res()));
    s.on('error', () => undefined);
    s.write(Buffer.from('0000001000120003', 'hex')); // header of a 16-byte frame, then silence
    await closed;
    expect(calls.protocolErrors.some((r) => /incomplete frame: 8 bytes received/.test(r))).toBe(true);
  });

  it('a parked long-poll Fetch keeps its connection past the idle timeout and is answered', async () => {
    const c = await KafkaWireClient.connect('127.0.0.1', server.port);
    const ct = await c.request<CreateTopicsResponse>(19, 4, { topics: [{ name: 'idle', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
    expect(ct.topics[0]!.errorCode).toBe(0);
    const r = await c.request<FetchResponse>(1, 11, {
      replicaId: -1,
      maxWaitMs: 1500, // > idleTimeoutMs (300)
      minBytes: 1,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{ topic: 'idle', partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0, logStartOffset: -1, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [],
      rackId: '',
    });
    expect(r.responses[0]!.partitions[0]!.errorCode).toBe(0);
    expect(r.responses[0]!.partitions[0]!.records!.length).toBe(0);
    c.close();
  });

  it('Fetch with min_bytes 0 answers at once even with a long max_wait (no data needed)', async () => {
    const c = await KafkaWireClient.connect('127.0.0.1', server.port);
    const r = await c.request<FetchResponse>(1, 11, {
      replicaId: -1,
      maxWaitMs: 600_000, // if min_bytes 0 were treated as 1 this would park for 10 minutes and the test would time out
      minBytes: 0,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{ topic: 'idle', partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0, logStartOffset: -1, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [],
      rackId: '',
    });
    expect(r.responses[0]!.partitions[0]!.errorCode).toBe(0);
    c.close();
  });

  it('close() drops every open connection', async () => {
    const sockets = await Promise.all([1, 2, 3].map(() => KafkaWireClient.connect('127.0.0.1', server.port)));
    await waitFor('connections to register', () => server.connections() >= 3);
    const other = await startKafkaServer({ host: '127.0.0.1', port: 0, backend: broker, logger });
    const c = await KafkaWireClient.connect('127.0.0.1', other.port);
    await other.close();
    await expect(c.request(18, 0, {})).rejects.toThrow();
    for (const s of sockets) s.close();
    await waitFor('hooks to see every close', () => calls.closed === calls.opened);
  });
});
