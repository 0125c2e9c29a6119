#!/usr/bin/env node
// lnc: Lance's operator / on-call CLI. Runs the TypeScript sources directly through tsx.
import { register } from 'tsx/esm/api';
register();
await import('../broker/src/cli/main.ts');
