#!/usr/bin/env node
// lance-operator: the Kubernetes operator. Runs the TypeScript sources directly through tsx.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../operator/src/main.ts');
await main();
