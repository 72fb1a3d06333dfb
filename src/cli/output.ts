/** `--json`: exactly one JSON object on stdout. Otherwise readable `key: value` lines. */
export function print(json: boolean, obj: Record<string, unknown>, text?: string): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(obj)}\n`);
    return;
  }
  if (text) {
    process.stdout.write(`${text}\n`);
    return;
  }
  for (const [k, v] of Object.entries(obj)) {
    process.stdout.write(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
  }
}

export class UsageError extends Error {}

export function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}
