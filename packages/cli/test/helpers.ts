/**
 * Runs the real `trustmesh` binary (bin/trustmesh.mjs through node) and
 * collects its exit code and output; `startUp` runs `trustmesh up --json` in
 * the background until its ready line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../bin/trustmesh.mjs', import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`trustmesh ${args.join(' ')} did not finish in ${options.timeoutMs ?? 20_000} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.on('error', reject);
  });
}

export interface Up {
  child: ChildProcess;
  info: {
    ready: true;
    pid: number;
    mesh: string;
    mode: string;
    nats: string;
    natsUrls: string[];
    natsNodes?: { name: string; url: string; pid: number; store: string }[];
    operator: { did: string };
    broker: string;
    audit: { did: string; log: string };
  };
  stderr: () => string;
  /** Sends SIGINT and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** `trustmesh --json up --dir <dir> ...` in the background, resolved once it printed its ready JSON. */
export function startUp(dir: string, extra: string[] = [], timeoutMs = 20_000): Promise<Up> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, '--json', 'up', '--dir', dir, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`trustmesh up did not get ready\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      stdout += d;
      try {
        const info = JSON.parse(stdout) as Up['info'];
        clearTimeout(timer);
        resolve({
          child,
          info,
          stderr: () => stderr,
          stop: async () => {
            child.kill('SIGINT');
            return exited;
          },
        });
      } catch {
        // not complete yet
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`trustmesh up exited with ${code}\n${stdout}\n${stderr}`));
    });
  });
}

/** The test agent (fixtures/agent.ts) joined to the mesh of `dir`; resolves with its DID once joined. */
export function startAgent(dir: string, name = 'worker'): Promise<{ did: string; stop(): Promise<void> }> {
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  const script = fileURLToPath(new URL('./fixtures/agent.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [tsx, script, dir, name], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<void>((done) => child.on('exit', () => done()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`test agent did not join\n${stderr}`));
    }, 20_000);
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      stdout += d;
      const line = stdout.split('\n')[0]!;
      if (stdout.includes('\n') && line.startsWith('did:key:')) {
        clearTimeout(timer);
        resolve({
          did: line,
          stop: async () => {
            child.kill('SIGTERM');
            await exited;
          },
        });
      }
    });
    void exited.then(() => reject(new Error(`test agent exited\n${stderr}`)));
  });
}
