import net from 'node:net';

/** One Kafka frame seen on the wire (size prefix stripped). */
export interface CapturedFrame {
  conn: number;
  direction: 'request' | 'response';
  bytes: Buffer;
}

export interface CaptureProxy {
  port: number;
  frames: CapturedFrame[];
  /** sets where new connections are forwarded (the broker may start after the proxy, to advertise the proxy's port) */
  setTarget(host: string, port: number): void;
  close(): Promise<void>;
}

/** Splits a byte stream into size-prefixed frames. */
class FrameSplitter {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (b: Buffer) => void) {}
  push(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4) {
      const n = this.buf.readInt32BE(0);
      if (this.buf.length < 4 + n) return;
      this.onFrame(Buffer.from(this.buf.subarray(4, 4 + n)));
      this.buf = this.buf.subarray(4 + n);
    }
  }
}

/**
 * A TCP proxy that forwards bytes unchanged between a real Kafka client and the broker and records every request
 * and response frame, so tests can decode exactly what kafkajs and librdkafka (kcat) send.
 */
export async function startCaptureProxy(): Promise<CaptureProxy> {
  const frames: CapturedFrame[] = [];
  const sockets = new Set<net.Socket>();
  let target: { host: string; port: number } | null = null;
  let nextConn = 1;
  const server = net.createServer((client) => {
    const conn = nextConn++;
    sockets.add(client);
    if (!target) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    const reqs = new FrameSplitter((bytes) => frames.push({ conn, direction: 'request', bytes }));
    const resps = new FrameSplitter((bytes) => frames.push({ conn, direction: 'response', bytes }));
    client.on('data', (d: Buffer) => {
      reqs.push(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      resps.push(d);
      client.write(d);
    });
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    frames,
    setTarget: (host, p) => {
      target = { host, port: p };
    },
    close: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}
