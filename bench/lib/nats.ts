/**
 * NATS JetStream peer: Debian's nats-server (2.9), one node (R1) or a 3-node cluster on loopback (R3), file storage.
 * nats-server 2.9 has no `sync_interval` (added in 2.10): JetStream acknowledges a publish once it is written
 * (R1) or replicated to a majority (R3) and fsyncs on its own schedule — a weaker durability class than Lance's
 * fsync-before-ack, stated next to every figure.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { connect, RetentionPolicy, StorageType, type JetStreamClient, type NatsConnection } from 'nats';
import type { Driver } from './driver.ts';
import { freePort, spawnChild, stopChild, tcpOpen, waitFor, type Child } from './procs.ts';

export class NatsSystem {
  private constructor(readonly children: Child[], readonly ports: number[], readonly replicas: number) {}

  static async start(dir: string, n: number): Promise<NatsSystem> {
    const ports: number[] = [];
    const cports: number[] = [];
    for (let i = 0; i < n; i++) {
      ports.push(await freePort());
      cports.push(await freePort());
    }
    const children: Child[] = [];
    for (let i = 0; i < n; i++) {
      const d = path.join(dir, `nats-${i + 1}`);
      mkdirSync(d, { recursive: true });
      const conf = path.join(dir, `nats-${i + 1}.conf`);
      const cluster = n > 1
        ? `cluster {\n  name: bench\n  listen: 127.0.0.1:${cports[i]}\n  routes: [${cports.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`).join(', ')}]\n}\n`
        : '';
      writeFileSync(conf, `server_name: n${i + 1}\nlisten: 127.0.0.1:${ports[i]}\njetstream {\n  store_dir: "${d}"\n}\n${cluster}`);
      children.push(spawnChild(`nats-${i + 1}`, 'nats-server', ['-c', conf], path.join(dir, `nats-${i + 1}.log`)));
    }
    for (let i = 0; i < n; i++) {
      await waitFor(`nats-server ${i + 1} port`, async () => {
        if (children[i]!.exited) throw new Error(`nats-server exited: ${children[i]!.tail()}`);
        return tcpOpen('127.0.0.1', ports[i]!);
      }, 30_000);
    }
    const s = new NatsSystem(children, ports, n);
    // JetStream in a cluster answers only once its meta group has a leader
    const nc = await s.connect();
    try {
      await waitFor('JetStream account info', async () => {
        const jsm = await nc.jetstreamManager({ timeout: 2000 });
        return (await jsm.getAccountInfo()) !== undefined;
      }, 60_000, 250);
    } finally {
      await nc.close();
    }
    return s;
  }

  connect(): Promise<NatsConnection> {
    return connect({ servers: this.ports.map((p) => `127.0.0.1:${p}`), maxPingOut: 10 });
  }

  /** streams `${prefix}-${i}` on subjects `${prefix}.${i}`, file storage, R = cluster size */
  async createStreams(prefix: string, count: number): Promise<string[]> {
    const nc = await this.connect();
    try {
      const jsm = await nc.jetstreamManager({ timeout: 10_000 });
      const subjects: string[] = [];
      for (let i = 0; i < count; i++) {
        await jsm.streams.add({ name: `${prefix}-${i}`, subjects: [`${prefix}.${i}`], storage: StorageType.File, num_replicas: this.replicas, retention: RetentionPolicy.Limits });
        subjects.push(`${prefix}.${i}`);
      }
      return subjects;
    } finally {
      await nc.close();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => stopChild(c, 'SIGTERM')));
  }
}

/**
 * One unit = `recordsPerUnit` JetStream publishes issued at once (async, pipelined on the connection) and awaited
 * together: JetStream has no client-side batch, pipelining is its batching. Connections: 2, units alternate.
 */
export async function natsDriver(sys: NatsSystem, subjects: string[], recordBytes: number, recordsPerUnit: number): Promise<Driver> {
  const conns: NatsConnection[] = [await sys.connect(), await sys.connect()];
  const jss: JetStreamClient[] = conns.map((c) => c.jetstream({ timeout: 30_000 }));
  const payload = new Uint8Array(recordBytes).fill(0x61);
  let rr = 0;
  return {
    recordBytes,
    recordsPerUnit,
    async send() {
      const i = rr++;
      const js = jss[i % jss.length]!;
      const subject = subjects[i % subjects.length]!;
      const acks: Promise<unknown>[] = [];
      for (let k = 0; k < recordsPerUnit; k++) acks.push(js.publish(subject, payload));
      await Promise.all(acks);
    },
    async close() {
      await Promise.all(conns.map((c) => c.close()));
    },
  };
}
