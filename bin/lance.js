#!/usr/bin/env node
// lance: the broker server command. Runs the TypeScript sources directly through tsx.
import { register } from 'tsx/esm/api';
register();
await import('../broker/src/server/main.ts');
