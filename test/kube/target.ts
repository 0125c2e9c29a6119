import { startStandIn, type StandIn, type StandInOptions } from './cluster.ts';

/**
 * The cluster an e2e suite runs against: a real one when `KUBECONFIG` is set in the environment (the suite must then
 * use only the Kubernetes API and kubectl/helm), otherwise a fresh stand-in. `standIn` (and with it `faults`) is
 * undefined against a real cluster, so fault-injection tests can tell they need another mechanism there.
 */
export interface KubeTarget {
  kubeconfigPath: string;
  real: boolean;
  standIn?: StandIn;
  stop(): Promise<void>;
}

export async function kubeTarget(opts: StandInOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<KubeTarget> {
  const external = env.KUBECONFIG?.trim();
  if (external) return { kubeconfigPath: external, real: true, stop: async () => undefined };
  const standIn = await startStandIn(opts);
  return { kubeconfigPath: standIn.kubeconfigPath, real: false, standIn, stop: () => standIn.stop() };
}
