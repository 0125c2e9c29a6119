/**
 * The broker and operator images, built by scripts/build-images.sh and run with testcontainers@11 on a real Docker
 * engine (host networking: these machines have no bridge/NAT). Runs when an engine is reachable — DOCKER_HOST, or
 * the private one scripts/start-dockerd.sh starts (npm pretest / .ci/run do). When none is, the suite says why,
 * loudly, and its tests are reported as skipped; LANCE_REQUIRE_DOCKER=1 turns that into a failure.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandIn, type StandIn } from '../kube/cluster.ts';
import { REPO_ROOT } from '../kube/images.ts';
import { kubectl, toolEnv, waitFor } from '../kube/testutil.ts';
import { KafkajsPartitionReader } from '../kafka/helpers/kafkajs-reader.ts';

const PRIVATE_DOCKERD_SOCK = '/var/tmp/lance-dockerd/run/docker.sock'; // scripts/start-dockerd.sh
const TAG = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version as string;

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 5000 }, (res) => { res.resume(); resolve(res.statusCode === 200); });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

/** The engine to use, or why there is none. */
async function findEngine(): Promise<{ host: string } | { why: string }> {
  const host = process.env.DOCKER_HOST ?? (fs.existsSync(PRIVATE_DOCKERD_SOCK) ? `unix://${PRIVATE_DOCKERD_SOCK}` : undefined);
  if (!host) return { why: `DOCKER_HOST is not set and ${PRIVATE_DOCKERD_SOCK} does not exist (run: bash scripts/start-dockerd.sh)` };
  if (!host.startsWith('unix://')) return { host }; // tcp engines: let testcontainers find out
  return (await ping(host.slice('unix://'.length))) ? { host } : { why: `no Docker engine answers on ${host} (run: bash scripts/start-dockerd.sh)` };
}

const engine = await findEngine();
if ('why' in engine) {
  const msg = `\n${'!'.repeat(100)}\n!! test/images: NOT RUN — ${engine.why}\n${'!'.repeat(100)}\n`;
  process.stderr.write(msg);
  // As root, `npm test`'s pretest installs and starts a private engine, so its absence is a failure, not a skip.
  // Only a non-root machine (where pretest cannot start one) may report NOT RUN.
  const required = process.env.LANCE_REQUIRE_DOCKER === '1' || process.getuid?.() === 0;
  if (required) throw new Error(`a Docker engine is required here (root: pretest starts one) but ${engine.why}`);
} else {
  process.env.DOCKER_HOST = engine.host;
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  process.env.TESTCONTAINERS_HOST_OVERRIDE = '127.0.0.1';
}
const hasEngine = !('why' in engine);

function sh(bin: string, args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { cwd: REPO_ROOT, env: process.env, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** testcontainers has no read-only-root option; HostConfig.ReadonlyRootfs is what `docker run --read-only` sets. */
class ReadOnlyRootContainer extends GenericContainer {
  constructor(image: string) {
    super(image);
    this.hostConfig.ReadonlyRootfs = true;
  }
}

describe.skipIf(!hasEngine)('lance images (Docker engine)', () => {
  const started: StartedTestContainer[] = [];
  let dataDir: string;
  let k: StandIn | undefined;

  beforeAll(async () => {
    // The first build downloads npm packages and may build the local base image; later runs hit the layer cache.
    const b = await sh('bash', ['scripts/build-images.sh', 'broker', 'operator'], 600_000);
    expect(b.code, b.out).toBe(0);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lance-image-data-'));
    fs.chownSync(dataDir, 10001, 10001); // the image's user owns its data volume, as fsGroup does on kube
  }, 660_000);

  afterAll(async () => {
    for (const c of started) await c.stop({ timeout: 10_000 }).catch(() => undefined);
    await k?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('both images carry OCI labels, run as uid 10001 and start under tini', async () => {
    for (const img of ['broker', 'operator']) {
      const r = await sh('docker', ['image', 'inspect', `lance/${img}:${TAG}`, '--format', '{{json .Config}}'], 30_000);
      expect(r.code, r.out).toBe(0);
      const cfg = JSON.parse(r.out) as { User: string; Entrypoint: string[]; Labels: Record<string, string> };
      expect(cfg.User).toBe('10001:10001');
      expect(cfg.Entrypoint[0]).toBe('/usr/bin/tini');
      expect(cfg.Labels).toMatchObject({ 'org.opencontainers.image.title': `lance-${img}`, 'org.opencontainers.image.version': TAG });
    }
  });

  it('broker: non-root, read-only root fs, /health/ready, kafkajs round trip, lnc inside the container', async () => {
    const [kafkaPort, adminPort] = [await freePort(), await freePort()];
    const c = await new ReadOnlyRootContainer(`lance/broker:${TAG}`)
      .withNetworkMode('host')
      .withTmpFs({ '/tmp': 'rw,size=64m' })
      .withBindMounts([{ source: dataDir, target: '/var/lib/lance', mode: 'rw' }])
      .withEnvironment({ LANCE_KAFKA_PORT: String(kafkaPort), LANCE_ADMIN_PORT: String(adminPort), LANCE_KAFKA_HOST: '127.0.0.1', LANCE_ADMIN_HOST: '127.0.0.1', LANCE_ADVERTISED_HOST: '127.0.0.1' })
      .withCommand(['--standalone'])
      .withWaitStrategy(Wait.forLogMessage(/lance ready/))
      .withStartupTimeout(120_000)
      .start();
    started.push(c);

    const id = await c.exec(['id', '-u']);
    expect(id.output.trim()).toBe('10001');
    const write = await c.exec(['sh', '-c', 'touch /opt/lance/x 2>&1 || echo refused']);
    expect(write.output).toMatch(/Read-only file system/);
    const health = await waitFor('/health/ready', async () => {
      const r = await fetch(`http://127.0.0.1:${adminPort}/health/ready`).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    }, 60_000, 250);
    expect(await health.json()).toMatchObject({ status: 'ready' });

    const kafka = new Kafka({ clientId: 'image-test', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'img', numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'img', messages: [{ key: 'k', value: 'from-the-image' }] });
    await producer.disconnect();
    // Read back with kafkajs's own Fetch path, group-less (as test/kafka/ does; groups are tested in test/groups/).
    const reader = new KafkajsPartitionReader([`127.0.0.1:${kafkaPort}`]);
    await reader.connect();
    const got = (await reader.readToEnd('img', 0, 0)).map((r) => r.value);
    await reader.disconnect();
    expect(got).toEqual(['from-the-image']);

    // The data went to the volume, owned by the image's user.
    const topicDirs = fs.readdirSync(dataDir).filter((f) => f.startsWith('topic_'));
    expect(topicDirs.length).toBeGreaterThan(0);
    expect(fs.statSync(path.join(dataDir, topicDirs[0]!)).uid).toBe(10001);

    const help = await c.exec(['lnc', '--help']);
    expect(help.exitCode, help.output).toBe(0);
    expect(help.output).toContain('lnc');
    const list = await c.exec(['lnc', 'list-topics', '--server', `127.0.0.1:${adminPort}`]);
    expect(list.exitCode, list.output).toBe(0);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((t) => t.name)).toContain('img');
  }, 240_000);

  it('operator: starts (read-only root fs) against a kube API and serves /readyz and /metrics', async () => {
    k = await startStandIn({ workloads: false });
    const env = toolEnv(k.kubeconfigPath);
    const crds = await kubectl(env, ['apply', '-f', path.join(REPO_ROOT, 'crds')]);
    expect(crds.code, crds.stderr).toBe(0);
    fs.chmodSync(k.kubeconfigPath, 0o644); // read by uid 10001 inside the container
    const [healthPort, metricsPort] = [await freePort(), await freePort()];
    const c = await new ReadOnlyRootContainer(`lance/operator:${TAG}`)
      .withNetworkMode('host')
      .withTmpFs({ '/tmp': 'rw,size=64m' })
      .withBindMounts([{ source: k.kubeconfigPath, target: '/etc/lance/kubeconfig', mode: 'ro' }])
      .withCommand(['--kubeconfig=/etc/lance/kubeconfig', `--health-port=${healthPort}`, `--metrics-port=${metricsPort}`])
      .withWaitStrategy(Wait.forLogMessage(/operator started/))
      .withStartupTimeout(120_000)
      .start();
    started.push(c);
    await waitFor('/readyz 200', async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined))?.status === 200, 60_000, 250);
    const m = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(m.status).toBe(200);
    expect(await m.text()).toMatch(/^# HELP lance_operator_/m);
    const id = await c.exec(['id', '-u']);
    expect(id.output.trim()).toBe('10001');
  }, 240_000);
});
