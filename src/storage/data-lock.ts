import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The embedded database (PGlite under DATA_DIR) belongs to one process: two processes opening the
 * same files would each believe it owns them, and writes of one are lost when the other stops. The
 * first opener writes `flowgate.lock` (its pid, what it is, since when); a second opener while that
 * process lives gets DatabaseInUseError naming it, and the caller exits 2 instead of running on.
 * A lock left by a process that died is taken over.
 */
export interface LockHolder {
  pid: number;
  program: string;
  issuer?: string;
  started_at: string;
}

export class DatabaseInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: LockHolder,
  ) {
    const where = holder.issuer ? `; it serves ${holder.issuer}` : '';
    super(
      [
        `The embedded database in ${dataDir} is in use by process ${holder.pid} (${holder.program}, since ${holder.started_at}${where}).`,
        'Only one process may open it. Either stop that process first, or make the change through it:',
        `the JSON API (reference at ${holder.issuer ?? 'the server'}/docs/api) or the dashboard (${holder.issuer ?? 'the server'}/dashboard).`,
        'To run several processes on one database, set DATABASE_URL to a PostgreSQL server.',
      ].join('\n'),
    );
  }
}

const held = new Map<string, string>();

/** What this process is, for the message another process shows (never its arguments: they may hold secrets). */
export function programName(argv = process.argv): string {
  const script = argv[1] ?? '';
  if (script.endsWith(path.join('cli', 'main.ts')) || script.endsWith('flowgate.js')) return 'the flowgate CLI';
  if (script.includes(`${path.sep}examples${path.sep}`)) return 'npm run example';
  if (script.endsWith('main.ts') || script.endsWith('main.js')) return 'the Flowgate server (npm start)';
  return `node ${path.basename(script) || 'process'}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as LockHolder;
    return typeof v.pid === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the data directory for this process, or throws DatabaseInUseError; returns the release. */
export function lockDataDir(dataDir: string, info: { issuer?: string; program?: string } = {}): () => void {
  const dir = path.resolve(dataDir);
  const file = path.join(dir, 'flowgate.lock');
  mkdirSync(dir, { recursive: true });
  const me: LockHolder = { pid: process.pid, program: info.program ?? programName(), ...(info.issuer && { issuer: info.issuer }), started_at: new Date().toISOString() };
  if (held.has(file)) throw new DatabaseInUseError(dir, readHolder(file) ?? me);
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readHolder(file);
      if (holder && holder.pid !== process.pid && alive(holder.pid)) throw new DatabaseInUseError(dir, holder);
      if (holder?.pid === process.pid) throw new DatabaseInUseError(dir, holder);
      // Left by a process that is gone (or unreadable): take it over, once; a racing opener that
      // wins meanwhile is found alive on the next round.
      if (attempt > 0) throw new DatabaseInUseError(dir, holder ?? { pid: 0, program: 'unknown', started_at: 'unknown' });
      try {
        unlinkSync(file);
      } catch {
        /* someone else removed it */
      }
    }
  }
  const token = JSON.stringify(me);
  held.set(file, token);
  const release = () => {
    if (held.get(file) !== token) return;
    held.delete(file);
    process.off('exit', release);
    try {
      if (readHolder(file)?.pid === process.pid) unlinkSync(file);
    } catch {
      /* already gone */
    }
  };
  process.on('exit', release);
  return release;
}
