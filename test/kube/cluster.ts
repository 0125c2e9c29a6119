import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Store } from './store.ts';
import { ApiServer } from './apiserver.ts';
import { admit } from './validate.ts';
import { watchCrds } from './schema.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import type { Controller } from './controllers/base.ts';
import { GcController } from './controllers/gc.ts';
import { ServiceAccountController } from './controllers/namespace.ts';
import { StatefulSetController } from './controllers/statefulset.ts';
import { JobController } from './controllers/job.ts';
import { DeploymentController, ReplicaSetController } from './controllers/deployment.ts';
import { EndpointsController } from './controllers/endpoints.ts';
import { PvcController } from './controllers/pvc.ts';
import { DnsController } from './controllers/dns.ts';
import { Kubelet } from './kubelet.ts';
import { Faults } from './faults.ts';

export interface StandInOptions {
  /** Where PVC directories, pod logs, materialised volumes and the kubeconfig live (a temp dir by default). */
  dataDir?: string;
  port?: number;
  /** Watch history window (events); older resourceVersions get 410 Gone. */
  historyLimit?: number;
  bookmarkIntervalMs?: number;
  /** Virtual node names; pods are spread round-robin. */
  nodes?: string[];
  /** Set false to run only the API server (no controllers, no kubelet). */
  workloads?: boolean;
}

/** A running stand-in: API server + controllers + kubelet, with a kubeconfig file for kubectl/helm/client-node. */
export interface StandIn {
  url: string;
  kubeconfigPath: string;
  dataDir: string;
  store: Store;
  api: ApiServer;
  kubelet?: Kubelet;
  faults: Faults;
  stop(): Promise<void>;
}

export async function startStandIn(opts: StandInOptions = {}): Promise<StandIn> {
  const ownDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? await mkdtemp(path.join(os.tmpdir(), 'kube-standin-'));
  const store = new Store(opts.historyLimit ?? 5000);
  store.admit = admit;
  watchCrds(store);
  const nsT = store.type('', 'namespaces')!;
  for (const n of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) store.create(nsT, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: n } });
  const nodes = opts.nodes ?? ['node-0', 'node-1', 'node-2'];
  const workloads = opts.workloads !== false;
  const kubelet = workloads ? new Kubelet(store, { dataDir, nodes }) : undefined;
  const api = new ApiServer({ store, bookmarkIntervalMs: opts.bookmarkIntervalMs, hooks: { podLog: (ns, pod, c, o) => kubelet?.logs(ns, pod, c, o), podLogSource: (ns, pod, c) => kubelet?.logSource(ns, pod, c) } });
  const url = await api.listen(opts.port ?? 0);
  const kubeconfigPath = await writeKubeconfig(dataDir, url);
  const controllers: Controller[] = [new GcController(store), new ServiceAccountController(store)];
  if (workloads) {
    controllers.push(new StatefulSetController(store), new JobController(store), new DeploymentController(store), new ReplicaSetController(store), new EndpointsController(store), new PvcController(store, dataDir), new DnsController(store, dataDir));
  }
  for (const c of controllers) c.start();
  await kubelet?.start();
  const faults = new Faults(store, kubelet, dataDir);
  let stopped = false;
  return {
    url, kubeconfigPath, dataDir, store, api, faults, ...(kubelet ? { kubelet } : {}),
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const c of controllers) c.stop();
      await faults.close();
      await kubelet?.stop();
      faults.removeCgroups();
      await api.close();
      if (ownDir) await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
