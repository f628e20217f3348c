#!/usr/bin/env node
// The `trustmesh` binary: runs the TypeScript entry through tsx's loader (the workspace ships sources).
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
