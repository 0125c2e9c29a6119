/**
 * The operator process: `node bin/lance-operator.js [flags]` (or `npm run operator -- [flags]`; the image lance/operator).
 *   --kubeconfig PATH       kubeconfig file (default: in-cluster config when KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG/~/.kube/config)
 *   --namespace NS[,NS]     namespaces to watch (repeatable; default all)
 *   --health-port N         /healthz, /readyz (default 8081; 0 = any free port)
 *   --metrics-port N        /metrics (default 8080; may equal --health-port)
 *   --leader-elect          run leader election (Lease), for more than one replica
 *   --lease-name NAME       Lease name (default lance-operator)
 *   --lease-namespace NS    Lease namespace (default $POD_NAMESPACE, else the first watched namespace, else default)
 *   --broker-bind-address any|podIP   how brokers bind (podIP on the test/kube stand-in)
 *   --bind-address IP       address of the health/metrics servers (default all interfaces; $(POD_IP) on the stand-in)
 * SIGTERM/SIGINT: release the lease, stop informers and workers, exit 0.
 */
import * as http from 'node:http';
import os from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { LanceError } from '../../broker/src/common/errors.ts';
import { rootLogger } from '../../broker/src/common/log.ts';
import { Manager } from './controllers/manager.ts';

const portArg = z.coerce.number().int().min(0).max(65535);

export const operatorArgs = z.strictObject({
  kubeconfig: z.string().min(1).optional(),
  namespaces: z.array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a namespace name')).default([]),
  healthPort: portArg.default(8081),
  metricsPort: portArg.default(8080),
  leaderElect: z.boolean().default(false),
  leaseName: z.string().min(1).default('lance-operator'),
  leaseNamespace: z.string().min(1).optional(),
  brokerBindAddress: z.enum(['any', 'podIP']).default('any'),
  bindAddress: z.union([z.ipv4(), z.ipv6()]).optional(),
  /** A broker pod whose node is unreachable this long is replaced under a new node id (default 300). */
  nodeLostGraceSeconds: z.coerce.number().min(0).optional(),
});
export type OperatorArgs = z.output<typeof operatorArgs>;

/** argv → options; errors name the flag (USAGE). */
export function parseOperatorArgs(argv: string[]): OperatorArgs {
  const raw: Record<string, unknown> = { namespaces: [] as string[] };
  const flags: Record<string, string> = {
    '--kubeconfig': 'kubeconfig', '--health-port': 'healthPort', '--metrics-port': 'metricsPort', '--lease-name': 'leaseName',
    '--lease-namespace': 'leaseNamespace', '--broker-bind-address': 'brokerBindAddress', '--bind-address': 'bindAddress',
    '--node-lost-grace-seconds': 'nodeLostGraceSeconds',
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new LanceError('USAGE', `${flag}: needs a value`);
      return v;
    };
    if (flag === '--leader-elect') raw.leaderElect = inline === undefined ? true : inline === 'true';
    else if (flag === '--namespace' || flag === '-n') (raw.namespaces as string[]).push(...value().split(',').filter(Boolean));
    else if (flags[flag]) raw[flags[flag]] = value();
    else throw new LanceError('USAGE', `unknown flag ${flag} (see operator/src/main.ts for the flags)`);
  }
  const r = operatorArgs.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = String(issue.path[0] ?? '');
    const flag = Object.entries(flags).find(([, v]) => v === field)?.[0] ?? (field === 'namespaces' ? '--namespace' : field);
    throw new LanceError('USAGE', `${flag}: ${issue.message}`);
  }
  return r.data;
}

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

function listen(port: number, host: string | undefined, handler: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new LanceError('IO', `cannot listen on port ${port}: ${e.message}`)));
    if (host) server.listen(port, host, () => resolve(server));
    else server.listen(port, () => resolve(server));
  });
}

export interface RunningOperator {
  manager: Manager;
  healthPort: number;
  metricsPort: number;
  stop(): Promise<void>;
}

export async function runOperator(args: OperatorArgs): Promise<RunningOperator> {
  const log = rootLogger().child({ component: 'operator' });
  const kc = loadKubeConfig(args.kubeconfig);
  const identity = `${process.env.POD_NAME ?? process.env.HOSTNAME ?? os.hostname()}_${process.pid}`;
  const manager = new Manager({
    kubeConfig: kc, namespaces: args.namespaces, log, bindAddress: args.brokerBindAddress,
    ...(args.nodeLostGraceSeconds !== undefined ? { nodeLostGraceMs: args.nodeLostGraceSeconds * 1000 } : {}),
    ...(args.leaderElect ? { leaderElection: { name: args.leaseName, namespace: args.leaseNamespace ?? process.env.POD_NAMESPACE ?? args.namespaces[0] ?? 'default', identity } } : {}),
  });
  const health: http.RequestListener = (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (path === '/readyz') {
      const ok = manager.ready();
      return void res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'informers not synced\n');
    }
    if (path === '/metrics' && metricsSame) return metrics(req, res);
    res.writeHead(404).end();
  };
  const metrics: http.RequestListener = (req, res) => {
    if ((req.url ?? '/').split('?')[0] !== '/metrics') return void res.writeHead(404).end();
    manager.metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': manager.metrics.registry.contentType }).end(text), () => res.writeHead(500).end());
  };
  const metricsSame = args.metricsPort === args.healthPort && args.healthPort !== 0;
  const healthServer = await listen(args.healthPort, args.bindAddress, health);
  const metricsServer = metricsSame ? undefined : await listen(args.metricsPort, args.bindAddress, metrics);
  await manager.start();
  const addr = (s: http.Server | undefined): number => ((s?.address() as { port?: number } | null)?.port ?? 0);
  log.info({ namespaces: args.namespaces, leaderElect: args.leaderElect, health: addr(healthServer), metrics: addr(metricsServer ?? healthServer) }, 'operator started');
  return {
    manager,
    healthPort: addr(healthServer),
    metricsPort: addr(metricsServer ?? healthServer),
    async stop() {
      await manager.stop();
      await new Promise((r) => healthServer.close(r));
      if (metricsServer) await new Promise((r) => metricsServer.close(r));
    },
  };
}

export async function main(): Promise<void> {
  let args: OperatorArgs;
  try {
    args = parseOperatorArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`operator: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const op = await runOperator(args);
  let stopping = false;
  const shutdown = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    rootLogger().info({ sig }, 'stopping: releasing the lease');
    op.stop().then(() => process.exit(0), (e: unknown) => {
      rootLogger().error({ err: e }, 'unclean stop');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

// Run directly (`node --import tsx operator/src/main.ts`); bin/lance-operator.js calls main() itself.
if (process.argv[1]?.endsWith('operator/src/main.ts')) {
  main().catch((e: unknown) => {
    process.stderr.write(`operator: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
