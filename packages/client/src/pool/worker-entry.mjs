// Worker bootstrap: the worker is TypeScript, like the rest of the workspace.
// A process started with a TS loader (tsx) passes it on to its workers; one
// without it (a test runner's fork) gets tsx registered here.
try {
  await import('./worker.ts');
} catch (err) {
  if (err?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
  const { register } = await import('tsx/esm/api');
  register();
  await import('./worker.ts?loader=tsx'); // another URL: the failed import stays cached
}
