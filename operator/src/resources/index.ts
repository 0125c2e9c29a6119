/** Pure builders: LanceCluster / LanceRestore in, Kubernetes manifests out. */
export * from './names.ts';
export * from './configmap.ts';
export * from './statefulset.ts';
export * from './services.ts';
export * from './policy.ts';
export * from './restore-job.ts';
export * from './desired.ts';
