import net from 'node:net';
import { LanceError } from '../common/errors.ts';
import { ApiKey, SPECS } from './protocol/messages.ts';
import { decodeMessage, encodeMessage, inRange } from './protocol/schema.ts';
import { Reader, Writer } from './protocol/wire.ts';

/**
 * A minimal Kafka protocol client on this folder's codecs: pipelined requests over one connection, responses
 * matched by correlation id. Used by the produce benchmark and tests (real clients — kafkajs, kcat — are what the
 * acceptance tests use; this one lets tests send exact bytes and versions).
 */
export class KafkaWireClient {
  private socket: net.Socket;
  private nextCorrelation = 1;
  private pending = new Map<number, { apiKey: number; version: number; resolve: (v: Buffer) => void; reject: (e: Error) => void }>();
  private buf: Buffer = Buffer.alloc(0);
  private closedError: Error | null = null;

  private constructor(socket: net.Socket, readonly clientId: string) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => this.onData(d));
    const fail = (err: Error): void => {
      this.closedError = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    socket.on('error', (e) => fail(e));
    socket.on('close', () => fail(new LanceError('IO', 'kafka connection closed by the broker')));
  }

  static connect(host: string, port: number, clientId = 'lance-wire-client'): Promise<KafkaWireClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port, noDelay: true });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new KafkaWireClient(s, clientId));
      });
      s.once('error', reject);
    });
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4) {
      const n = this.buf.readInt32BE(0);
      if (this.buf.length < 4 + n) return;
      const frame = this.buf.subarray(4, 4 + n);
      this.buf = this.buf.subarray(4 + n);
      const correlationId = frame.readInt32BE(0);
      const p = this.pending.get(correlationId);
      if (!p) continue;
      this.pending.delete(correlationId);
      p.resolve(frame);
    }
  }

  /** Encodes a full request frame (size prefix included). */
  static encodeRequest(apiKey: number, version: number, correlationId: number, body: object, clientId: string | null = 'lance-wire-client'): Buffer {
    const specs = SPECS.get(apiKey);
    if (!specs) throw new LanceError('INVALID_ARGUMENT', `no schema for API key ${apiKey}`, { field: 'apiKey' });
    const w = new Writer();
    w.int32(0).int16(apiKey).int16(version).int32(correlationId).string(clientId);
    if (inRange(version, specs.request.flexible)) w.uvarint(0);
    encodeMessage(specs.request, w, body, version);
    const out = w.toBuffer();
    out.writeInt32BE(out.length - 4, 0);
    return out;
  }

  /** Decodes a response frame (no size prefix) for the given API/version. */
  static decodeResponse<T>(apiKey: number, version: number, frame: Buffer): T {
    const specs = SPECS.get(apiKey)!;
    const r = new Reader(frame, 4);
    if (apiKey !== ApiKey.ApiVersions && inRange(version, specs.response.flexible)) {
      const n = r.uvarint();
      for (let i = 0; i < n; i++) {
        r.uvarint();
        r.raw(r.uvarint());
      }
    }
    return decodeMessage<T>(specs.response, r, version);
  }

  /** Sends a request; resolves with the decoded response. acks=0 produce: pass expectResponse=false. */
  request<T>(apiKey: number, version: number, body: object, expectResponse = true): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const correlationId = this.nextCorrelation++;
    const frame = KafkaWireClient.encodeRequest(apiKey, version, correlationId, body, this.clientId);
    if (!expectResponse) {
      this.socket.write(frame);
      return Promise.resolve(undefined as T);
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.set(correlationId, {
        apiKey,
        version,
        resolve: (f) => {
          try {
            resolve(KafkaWireClient.decodeResponse<T>(apiKey, version, f));
          } catch (e) {
            reject(e as Error);
          }
        },
        reject,
      });
      this.socket.write(frame);
    });
  }

  /** resolves once the socket's buffered writes are handed to the kernel */
  drained(): Promise<void> {
    if (this.socket.writableLength === 0) return Promise.resolve();
    return new Promise((res) => this.socket.once('drain', () => res()));
  }

  inFlight(): number {
    return this.pending.size;
  }

  close(): void {
    this.socket.destroy();
  }
}
