/**
 * Shared set-up of the LanceRestore e2e suites: the test/kube stand-in (real broker and `lnc restore` processes),
 * the project's CRDs, an s3rver bucket with the credentials Secret, the operator in-process, and small kubectl
 * helpers. Test infrastructure only.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import YAML from 'yaml';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { startStandIn, type StandIn } from '../kube/cluster.ts';
import { REPO_ROOT } from '../kube/images.ts';
import { kubectl, toolEnv } from '../kube/testutil.ts';
import { startS3rver, type S3rverHandle } from '../s3/harness.ts';
import { runOperator, type RunningOperator } from '../../operator/src/main.ts';

export interface Condition { type: string; status: string; reason: string; message: string }
export interface LrsStatus {
  phase?: string;
  conditions?: Condition[];
  restorePoint?: { id: string; time: string };
  topicsRestored?: number;
  bytesRestored?: number;
  jobNames?: string[];
  startTime?: string;
  completionTime?: string;
}
export interface K8sEvent { reason: string; message: string; type: string; involvedObject: { name: string; kind: string } }

export interface RestoreEnv {
  k: StandIn;
  env: NodeJS.ProcessEnv;
  s3: S3rverHandle;
  readonly op: RunningOperator;
  /** Stops the operator and starts a fresh one (nothing kept in memory survives: adoption from the API only). */
  restartOperator(): Promise<void>;
  getJson<T>(args: string[]): Promise<T>;
  apply(doc: unknown): Promise<void>;
  restoreStatus(name: string): Promise<LrsStatus | undefined>;
  events(name: string): Promise<K8sEvent[]>;
  /** The pods of a LanceCluster: name → pod IP. */
  podIps(cluster: string): Promise<Map<string, string>>;
  /** kafkajs against a cluster's broker pods (pod DNS names resolved the way cluster DNS would). */
  kafka(cluster: string): Promise<Kafka>;
  stop(): Promise<void>;
}

export const S3_SECRET = 'lance-s3';

export interface RestorePointRow { time: string; topics: string[]; groups: number | null; unuploadedRecords: number | null; bytes: number | null; error?: string }

/** `lnc backups list --json` against a bucket prefix, as an operator on call would run it ([] when it fails). */
export async function listRestorePoints(s3: S3rverHandle, bucket: string, prefix: string): Promise<RestorePointRow[]> {
  const url = `s3://${bucket}/${prefix}?endpoint=${encodeURIComponent(s3.endpoint)}&region=us-east-1&forcePathStyle=true`;
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(REPO_ROOT, 'bin', 'lnc.js'), 'backups', 'list', '--from', url, '--json'], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }, timeout: 60_000,
    });
    return (JSON.parse(stdout) as { restorePoints: RestorePointRow[] }).restorePoints;
  } catch {
    return [];
  }
}

export async function startRestoreEnv(opts: { buckets: [string, ...string[]] }): Promise<RestoreEnv> {
  const k = await startStandIn();
  const env = toolEnv(k.kubeconfigPath);
  let s3: S3rverHandle | undefined;
  let op: RunningOperator | undefined;
  try {
    const crds = await kubectl(env, ['apply', '-f', path.join(REPO_ROOT, 'crds')]);
    expect(crds.code, crds.stderr).toBe(0);
    s3 = await startS3rver({ bucket: opts.buckets[0], extraBuckets: opts.buckets.slice(1) });
    const secret = await kubectl(env, ['apply', '-f', '-'], YAML.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: S3_SECRET }, type: 'Opaque', stringData: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } }));
    expect(secret.code, secret.stderr).toBe(0);
    op = await startOperator(k);
  } catch (e) {
    await op?.stop();
    await s3?.stop();
    await k.stop();
    throw e;
  }
  const getJson = async <T>(args: string[]): Promise<T> => {
    const r = await kubectl(env, ['get', ...args, '-o', 'json']);
    if (r.code !== 0) throw new Error(`kubectl get ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const podIps = async (cluster: string): Promise<Map<string, string>> => {
    const out = new Map<string, string>();
    for (const p of (await getJson<{ items: { metadata: { name: string }; status: { podIP?: string } }[] }>(['pods', '-l', `app.kubernetes.io/instance=${cluster},app.kubernetes.io/component=broker`])).items) {
      if (p.status.podIP) out.set(p.metadata.name, p.status.podIP);
    }
    return out;
  };
  const s3h = s3;
  let oph = op;
  return {
    k, env, s3: s3h, getJson, podIps,
    get op() {
      return oph;
    },
    async restartOperator() {
      await oph.stop();
      oph = await startOperator(k);
    },
    async apply(doc) {
      const r = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(doc));
      expect(r.code, r.stderr).toBe(0);
    },
    async restoreStatus(name) {
      return (await getJson<{ status?: LrsStatus }>(['lrs', name])).status;
    },
    async events(name) {
      return (await getJson<{ items: K8sEvent[] }>(['events', '--field-selector', `involvedObject.name=${name}`])).items;
    },
    async kafka(cluster) {
      const ips = await podIps(cluster);
      const first = [...ips.values()][0];
      if (!first) throw new Error(`no pod of ${cluster} has an IP`);
      return new Kafka({
        clientId: 'restore-e2e', brokers: [`${first}:9092`], logLevel: logLevel.NOTHING,
        retry: { retries: 10, initialRetryTime: 200 },
        socketFactory: ({ host, port, onConnect }) => {
          const s = net.connect({ host: ips.get(host.split('.')[0]!) ?? host, port }, onConnect);
          s.setKeepAlive(true, 1000);
          return s;
        },
      });
    },
    async stop() {
      await oph.stop();
      await k.stop();
      await s3h.stop();
    },
  };
}

function startOperator(k: StandIn): Promise<RunningOperator> {
  return runOperator({ kubeconfig: k.kubeconfigPath, namespaces: ['default'], healthPort: 0, metricsPort: 0, leaderElect: false, leaseName: 'lance-operator', brokerBindAddress: 'podIP' });
}

/** A 1-broker LanceCluster whose object store is the s3rver bucket (restore points under `prefix`). */
export function clusterDoc(name: string, s3: S3rverHandle, bucket: string, prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'lance.dev/v1alpha1', kind: 'LanceCluster', metadata: { name },
    spec: { replicas: 1, image: 'lance/broker:dev', storage: { size: '1Gi' }, objectStore: objectStore(s3, bucket, prefix), ...extra },
  };
}

export function objectStore(s3: S3rverHandle, bucket: string, prefix: string): Record<string, unknown> {
  return { backend: 's3', bucket, prefix, endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentialsSecret: { name: S3_SECRET } };
}

export function source(s3: S3rverHandle, bucket: string, prefix: string): Record<string, unknown> {
  return { backend: 's3', bucket, prefix, endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentialsSecret: { name: S3_SECRET } };
}

export function cond(st: LrsStatus | undefined, type: string): Condition | undefined {
  return st?.conditions?.find((c) => c.type === type);
}
