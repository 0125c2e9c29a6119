import net from 'node:net';
import { LanceError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { KafkaBackend } from './backend.ts';
import { KafkaError } from './errors.ts';
import { ANSWERED_UNADVERTISED, CloseConnection, KafkaHandlers, SUPPORTED_VERSIONS } from './handlers.ts';
import { ApiKey, SPECS } from './protocol/messages.ts';
import type {
  AlterConfigsRequest,
  CreatePartitionsRequest,
  CreateTopicsRequest,
  DeleteTopicsRequest,
  DescribeConfigsRequest,
  FetchRequest,
  FindCoordinatorRequest,
  ListOffsetsRequest,
  MetadataRequest,
  ProduceRequest,
} from './protocol/messages.ts';
import { decodeMessage, encodeMessage, inRange, type MessageSpec } from './protocol/schema.ts';
import { Reader, Writer } from './protocol/wire.ts';

export const DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024;
export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60 * 1000;
/** requests decoded but not yet answered, per connection; reading pauses above this (backpressure) */
const MAX_IN_FLIGHT = 64;

export interface KafkaMetricsHooks {
  /** called once per answered (or acks=0) request */
  onRequest?(apiKey: number, apiVersion: number, durationMs: number, bytesIn: number, bytesOut: number): void;
  /** a connection was closed because of bad input; reason is the logged text */
  onProtocolError?(reason: string): void;
  onConnectionOpened?(): void;
  onConnectionClosed?(): void;
}

export interface KafkaServerOptions {
  host: string;
  /** 0 = pick a free port */
  port: number;
  backend: KafkaBackend;
  logger: Logger;
  maxFrameBytes?: number;
  /** close a connection with nothing in flight after this long without input (Kafka: connections.max.idle.ms); default 10 min */
  idleTimeoutMs?: number;
  metrics?: KafkaMetricsHooks;
  /** consumer groups + InitProducerId (broker/src/groups/service.ts); absent = those APIs are not advertised */
  groups?: KafkaGroupApi;
}

/** The seam to the group coordinator: the API versions it serves and one entry point for their requests. */
export interface KafkaGroupApi {
  readonly versions: ReadonlyArray<readonly [number, readonly [number, number]]>;
  handle(apiKey: number, apiVersion: number, request: unknown, ctx: { clientId: string | null; clientHost: string }): Promise<object> | object;
}

export interface KafkaServer {
  /** the bound port */
  port: number;
  host: string;
  /** number of open client connections */
  connections(): number;
  /** stops accepting, closes every connection, resolves when the listener is closed */
  close(): Promise<void>;
}

interface Header {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

/** The Kafka request header is v2 (tagged fields) when the API version is flexible; v1 otherwise. */
function isFlexible(spec: MessageSpec, version: number): boolean {
  return inRange(version, spec.flexible);
}

export function startKafkaServer(opts: KafkaServerOptions): Promise<KafkaServer> {
  const maxFrame = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const handlers = new KafkaHandlers(opts.backend, opts.logger, opts.groups);
  const sockets = new Set<net.Socket>();
  let nextConnId = 1;

  // allowHalfOpen: a client that shuts down its write side still gets the answers to what it already sent
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    opts.metrics?.onConnectionOpened?.();
    const conn = new Connection(socket, nextConnId++, maxFrame, handlers, opts.logger, opts.metrics);
    socket.setTimeout(opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, () => conn.onIdle());
    socket.on('close', () => {
      sockets.delete(socket);
      conn.abort.abort();
      opts.metrics?.onConnectionClosed?.();
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      server.on('error', (err) => opts.logger.error({ err }, 'kafka listener error'));
      const addr = server.address() as net.AddressInfo;
      opts.logger.info({ host: opts.host, port: addr.port, maxFrameBytes: maxFrame }, 'kafka listener started');
      resolve({
        port: addr.port,
        host: opts.host,
        connections: () => sockets.size,
        close: () =>
          new Promise<void>((res) => {
            server.close(() => res());
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}

/**
 * Splits a TCP byte stream into Kafka frames (int32 size prefix). Pure: bytes in, frames or a rejection reason out.
 * A size below the 8-byte request header or above maxFrame is rejected as soon as the 4 size bytes are in, before
 * any body is buffered.
 */
export class FrameAssembler {
  private chunks: Buffer[] = [];
  /** bytes received and not yet returned as a frame */
  buffered = 0;

  constructor(private readonly maxFrame: number) {}

  push(d: Buffer): void {
    if (d.length === 0) return;
    this.chunks.push(d);
    this.buffered += d.length;
  }

  /** the next complete frame (without its size prefix), a rejection reason, or null when more bytes are needed */
  next(): Buffer | string | null {
    if (this.buffered < 4) return null;
    const size = this.peek(4).readInt32BE(0);
    if (size < 8) return `frame size ${size} is below the 8-byte minimum request header`;
    if (size > this.maxFrame) return `frame size ${size} exceeds max frame size ${this.maxFrame}`;
    if (this.buffered < 4 + size) return null;
    return this.take(4 + size).subarray(4);
  }

  clear(): void {
    this.chunks = [];
    this.buffered = 0;
  }

  /** The first n buffered bytes as one Buffer (merges only the chunks needed; n is 4 here). */
  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    const merged = this.take(n);
    this.chunks.unshift(merged);
    this.buffered += n;
    return merged;
  }

  /**
   * Removes and returns the first n bytes. Copies only when the frame spans chunks, and then only the n bytes
   * (never the whole backlog: pipelined megabytes must not be re-copied per frame).
   */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0]!;
        const want = n - filled;
        if (c.length <= want) {
          c.copy(out, filled);
          filled += c.length;
          this.chunks.shift();
        } else {
          c.copy(out, filled, 0, want);
          filled += want;
          this.chunks[0] = c.subarray(want);
        }
      }
    }
    this.buffered -= n;
    return out;
  }

}

/** One client connection: frame splitting, in-order responses for pipelined requests, backpressure. */
class Connection {
  readonly abort = new AbortController();
  private readonly frames: FrameAssembler;
  private inFlight = 0;
  /** responses in request order; each resolves to the encoded frame (or null when nothing is sent) */
  private queue: Array<Promise<Buffer[] | null | CloseConnection>> = [];
  private draining = false;
  private ending = false;
  private closed = false;
  private logInstance: Logger | undefined;
  private readonly id: number;
  private readonly baseLogger: Logger;

  constructor(
    private readonly socket: net.Socket,
    id: number,
    private readonly maxFrame: number,
    private readonly handlers: KafkaHandlers,
    logger: Logger,
    private readonly metrics: KafkaMetricsHooks | undefined,
  ) {
    this.id = id;
    this.baseLogger = logger;
    this.frames = new FrameAssembler(maxFrame);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('end', () => {
      // client half-closed: answer what is queued, then close
      if (this.frames.buffered > 0) return this.fail(`client closed mid-frame: ${this.frames.buffered} bytes of an incomplete frame`);
      this.ending = true;
      void this.flushQueue();
    });
  }

  /** child logger created on first use: most connections never log, and creating one per connection costs CPU */
  private get log(): Logger {
    this.logInstance ??= this.baseLogger.child({ conn: this.id, remote: `${this.socket.remoteAddress}:${this.socket.remotePort}` });
    return this.logInstance;
  }

  /** No input for the idle timeout: close unless requests (e.g. a long-poll Fetch) are still being answered. */
  onIdle(): void {
    if (this.inFlight > 0) return;
    if (this.frames.buffered > 0) this.fail(`incomplete frame: ${this.frames.buffered} bytes received, then nothing until the idle timeout`);
    else {
      this.log.debug('closing idle kafka connection');
      this.socket.destroy();
    }
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.log.warn({ reason }, 'closing kafka connection');
    this.metrics?.onProtocolError?.(reason);
    this.frames.clear();
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    if (this.closed) return;
    this.frames.push(d);
    for (;;) {
      const next = this.frames.next();
      if (next === null) return;
      if (typeof next === 'string') return this.fail(next);
      this.onFrame(next);
      if (this.closed) return;
    }
  }

  private onFrame(frame: Buffer): void {
    const started = performance.now();
    const r = new Reader(frame);
    let header: Header;
    try {
      header = { apiKey: r.int16(), apiVersion: r.int16(), correlationId: r.int32(), clientId: null };
    } catch (err) {
      return this.fail(`unreadable request header: ${(err as Error).message}`);
    }
    const { apiKey, apiVersion } = header;

    // ApiVersions with a version we don't know: answer v0 with UNSUPPORTED_VERSION and our ranges (KIP-511), so
    // newer clients can downgrade. The body is not parsed (its layout is unknown to us).
    if (apiKey === ApiKey.ApiVersions && !inRange(apiVersion, { min: 0, max: SUPPORTED_VERSIONS.get(ApiKey.ApiVersions)![1] })) {
      const body = { ...this.handlers.apiVersions(), errorCode: KafkaError.UNSUPPORTED_VERSION };
      this.enqueue(header, Promise.resolve(this.encode(ApiKey.ApiVersions, 0, header.correlationId, body)), frame.length, started);
      return;
    }

    const range = SUPPORTED_VERSIONS.get(apiKey) ?? this.handlers.groupVersions.get(apiKey) ?? ANSWERED_UNADVERTISED.get(apiKey);
    const specs = SPECS.get(apiKey);
    if (!range || !specs) return this.fail(`unknown or unsupported API key ${apiKey} (version ${apiVersion}, correlation id ${header.correlationId})`);
    if (apiVersion < range[0] || apiVersion > range[1]) {
      // Kafka brokers disconnect here too: clients negotiate versions with ApiVersions first.
      return this.fail(`API key ${apiKey} version ${apiVersion} is not supported (supported ${range[0]}-${range[1]})`);
    }

    let request: unknown;
    try {
      r.field = 'header.clientId';
      header.clientId = r.string();
      if (isFlexible(specs.request, apiVersion)) {
        r.field = 'header.taggedFields';
        skipTaggedFields(r);
      }
      r.field = '';
      request = decodeMessage(specs.request, r, apiVersion);
    } catch (err) {
      return this.fail(`malformed ${specs.request.name} v${apiVersion} (correlation id ${header.correlationId}): ${(err as Error).message}`);
    }

    let result: Promise<object | null> | object | null;
    try {
      result = this.dispatch(header, request);
    } catch (err) {
      result = Promise.reject(err);
    }
    const encoded = Promise.resolve(result).then(
      (body) => (body === null || body instanceof CloseConnection ? body : this.encode(apiKey, apiVersion, header.correlationId, body)),
      (err: unknown) => {
        this.log.error({ err, apiKey, apiVersion }, 'request handler failed');
        throw err;
      },
    );
    this.enqueue(header, encoded, frame.length, started);
  }

  private dispatch(h: Header, req: unknown): Promise<object | null> | object | null {
    const v = h.apiVersion;
    const hd = this.handlers;
    if (hd.groups && hd.groupVersions.has(h.apiKey)) return hd.groups.handle(h.apiKey, v, req, { clientId: h.clientId, clientHost: this.socket.remoteAddress ?? '' });
    switch (h.apiKey) {
      case ApiKey.ApiVersions:
        return hd.apiVersions();
      case ApiKey.Metadata:
        return hd.metadata(req as MetadataRequest, v);
      case ApiKey.Produce:
        return hd.produce(req as ProduceRequest);
      case ApiKey.Fetch:
        return hd.fetch(req as FetchRequest, v, this.abort.signal);
      case ApiKey.ListOffsets:
        return hd.listOffsets(req as ListOffsetsRequest);
      case ApiKey.CreateTopics:
        return hd.createTopics(req as CreateTopicsRequest);
      case ApiKey.DeleteTopics:
        return hd.deleteTopics(req as DeleteTopicsRequest, v);
      case ApiKey.CreatePartitions:
        return hd.createPartitions(req as CreatePartitionsRequest);
      case ApiKey.DescribeConfigs:
        return hd.describeConfigs(req as DescribeConfigsRequest, v);
      case ApiKey.AlterConfigs:
        return hd.alterConfigs(req as AlterConfigsRequest);
      case ApiKey.DescribeCluster:
        return hd.describeCluster();
      case ApiKey.FindCoordinator:
        return hd.findCoordinator(req as FindCoordinatorRequest, v);
      default:
        throw new LanceError('INTERNAL', `no handler for API key ${h.apiKey}`);
    }
  }

  /** size prefix + response header (v0, or v1 with tagged fields for flexible versions except ApiVersions) + body */
  private encode(apiKey: number, apiVersion: number, correlationId: number, body: object): Buffer[] {
    const specs = SPECS.get(apiKey)!;
    const w = new Writer();
    w.int32(0); // size placeholder
    w.int32(correlationId);
    if (apiKey !== ApiKey.ApiVersions && isFlexible(specs.response, apiVersion)) w.uvarint(0);
    encodeMessage(specs.response, w, body, apiVersion);
    const chunks = w.chunksOut();
    chunks[0]!.writeInt32BE(w.length - 4, 0);
    return chunks;
  }

  private enqueue(h: Header, response: Promise<Buffer[] | null | CloseConnection>, bytesIn: number, started: number): void {
    this.inFlight++;
    if (this.inFlight >= MAX_IN_FLIGHT) this.socket.pause();
    const tracked = response.then(
      (chunks) => {
        const bytesOut = Array.isArray(chunks) ? chunks.reduce((n, c) => n + c.length, 0) : 0;
        const ms = performance.now() - started;
        this.metrics?.onRequest?.(h.apiKey, h.apiVersion, ms, bytesIn + 4, bytesOut);
        if (this.baseLogger.isLevelEnabled('debug')) {
          this.log.debug({ apiKey: h.apiKey, apiVersion: h.apiVersion, correlationId: h.correlationId, clientId: h.clientId, ms: Number(ms.toFixed(2)), bytesIn: bytesIn + 4, bytesOut }, 'kafka request');
        }
        return chunks;
      },
      (err: unknown) => {
        this.fail(`internal error answering API key ${h.apiKey} v${h.apiVersion}: ${(err as Error)?.message ?? String(err)}`);
        return null;
      },
    );
    this.queue.push(tracked);
    void this.flushQueue();
  }

  /** Writes finished responses strictly in request order. */
  private async flushQueue(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const chunks = await this.queue[0]!;
        this.queue.shift();
        this.inFlight--;
        if (this.closed || this.socket.destroyed) continue;
        if (chunks instanceof CloseConnection) {
          // after every earlier response went out (they were written above, in order)
          this.closed = true;
          this.log.warn({ reason: chunks.reason }, 'closing kafka connection');
          const sock = this.socket;
          sock.end(() => sock.destroy());
          continue;
        }
        if (chunks) {
          this.socket.cork();
          let ok = true;
          for (const c of chunks) ok = this.socket.write(c);
          this.socket.uncork();
          if (!ok) {
            await new Promise<void>((res) => {
              const done = (): void => {
                this.socket.off('drain', done);
                this.socket.off('close', done);
                res();
              };
              this.socket.on('drain', done);
              this.socket.on('close', done);
            });
          }
        }
        if (this.inFlight < MAX_IN_FLIGHT && this.socket.isPaused()) this.socket.resume();
      }
    } finally {
      this.draining = false;
    }
    if (this.ending && this.queue.length === 0 && !this.socket.destroyed) this.socket.end();
  }
}

function skipTaggedFields(r: Reader): void {
  const n = r.uvarint();
  for (let i = 0; i < n; i++) {
    r.uvarint();
    r.raw(r.uvarint());
  }
}
