import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, rename, rm } from 'node:fs/promises';
import { SecureModeError } from './errors.ts';

/**
 * Writes `data` to `path` with mode 0600, atomically: a fresh temp file beside
 * it, created with O_EXCL|O_NOFOLLOW (so neither an existing file nor a planted
 * symbolic link is written through), synced, then renamed over `path`.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const handle = await open(temp, flags, mode);
  try {
    await handle.chmod(mode); // the umask may have narrowed or, for 0644 files, nothing; be explicit
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temp, path);
}

/**
 * Reads a secret file, refusing a symbolic link and a file that group or
 * others may read (`secret_file_permissions`, with the chmod that fixes it).
 */
export async function readSecretFile(path: string): Promise<Uint8Array> {
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(path);
  } catch (cause) {
    throw new SecureModeError('mesh_dir_invalid', `missing secret file ${path}`, { cause });
  }
  if (info.isSymbolicLink())
    throw new SecureModeError('secret_file_permissions', `${path} is a symbolic link; a secret file must be a regular file`);
  if ((info.mode & 0o077) !== 0) {
    throw new SecureModeError(
      'secret_file_permissions',
      `${path} is readable by group or others (mode ${(info.mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
    );
  }
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return new Uint8Array(await handle.readFile());
  } finally {
    await handle.close();
  }
}
