import net from 'node:net';

/**
 * A TCP proxy in front of a broker that, for chosen Produce requests (by their order through the proxy, 1-based),
 * lets the request reach the broker but swallows the broker's answer and cuts that connection — the producer sees a
 * network failure after the write happened and must retry.
 */
export interface DropProxy {
  port: number;
  produces(): number;
  dropped(): number;
  close(): Promise<void>;
}

class Frames {
  private buf = Buffer.alloc(0);
  push(d: Buffer): Buffer[] {
    this.buf = Buffer.concat([this.buf, d]);
    const out: Buffer[] = [];
    while (this.buf.length >= 4) {
      const n = this.buf.readInt32BE(0);
      if (this.buf.length < 4 + n) break;
      out.push(this.buf.subarray(0, 4 + n));
      this.buf = this.buf.subarray(4 + n);
    }
    return out;
  }
}

/** `cut`: also close the connection after swallowing (else the client's request timeout must notice). */
export async function startDropProxy(targetPort: number, dropProduceNumbers: number[], cutAfterDrop = true): Promise<DropProxy> {
  let produceCount = 0;
  let droppedCount = 0;
  const drop = new Set(dropProduceNumbers);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const doomed = new Set<number>(); // correlation ids whose responses are swallowed
    const up = new Frames();
    const down = new Frames();
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d: Buffer) => {
      for (const f of up.push(d)) {
        if (f.readInt16BE(4) === 0) {
          produceCount++;
          if (drop.has(produceCount)) doomed.add(f.readInt32BE(8));
        }
        upstream.write(f);
      }
    });
    upstream.on('data', (d: Buffer) => {
      for (const f of down.push(d)) {
        if (doomed.has(f.readInt32BE(4))) {
          droppedCount++;
          if (cutAfterDrop) {
            cut();
            return;
          }
          continue;
        }
        client.write(f);
      }
    });
    for (const s of [client, upstream]) {
      s.on('error', cut);
      s.on('close', () => {
        sockets.delete(s);
        cut();
      });
    }
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return {
    port: (server.address() as net.AddressInfo).port,
    produces: () => produceCount,
    dropped: () => droppedCount,
    close: () => new Promise<void>((res) => {
      for (const s of sockets) s.destroy();
      server.close(() => res());
    }),
  };
}
