#!/usr/bin/env node
// The `parley` command. The server is TypeScript; tsx loads it without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli.ts');
