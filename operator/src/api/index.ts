/** The operator's API: LanceCluster and LanceRestore schemas, parse helpers, conditions and CRD generation. */
export * from './common.ts';
export * from './lancecluster.ts';
export * from './lancerestore.ts';
export * from './conditions.ts';
export * from './crd.ts';
