/**
 * @packageDocumentation
 * The `trustmesh` command as a library: the commander program (for tests and
 * embedding), exit codes, and the embedded mesh that `up` and `demo` run.
 *
 * @example
 * ```ts
 * import { buildProgram } from '@trustmesh/cli'
 * await buildProgram().parseAsync(['node', 'trustmesh', 'keys', 'new', '--out', 'me.key'])
 * ```
 */
export { buildProgram } from './program.ts';
export { CliError, EXIT } from './errors.ts';
export type { ExitCode } from './errors.ts';
export { startMesh, resolveTarget } from './mesh.ts';
export type { RunningMesh, StartMeshInit, MeshTarget } from './mesh.ts';
export type { MeshConfig } from './config.ts';
