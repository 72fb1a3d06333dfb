/** Small, pure presentation helpers for the dashboard's pages (dates, statuses, expiry choices). */

const UNITS: Array<[Intl.RelativeTimeFormatUnit, number]> = [
  ['year', 365 * 86400],
  ['month', 30 * 86400],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];
const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "3 minutes ago", "in 6 days": the exact time goes in the element's title and datetime. */
export function relative(iso: string | Date, now = Date.now()): string {
  const t = typeof iso === 'string' ? Date.parse(iso) : iso.getTime();
  const diff = Math.round((t - now) / 1000);
  const abs = Math.abs(diff);
  if (abs < 10) return 'just now';
  for (const [unit, secs] of UNITS) if (abs >= secs) return rtf.format(Math.trunc(diff / secs), unit);
  return 'just now';
}

/** "2026-11-23 17:07 UTC": unambiguous, the same for every viewer. */
export function exact(iso: string | Date): string {
  const d = typeof iso === 'string' ? new Date(iso) : iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export const EXPIRING_SOON_MS = 7 * 86400_000;

export function keyStatus(k: { status: string; expires_at: string | null }, now = Date.now()): 'active' | 'expiring soon' | 'expired' | 'revoked' {
  if (k.status === 'expired') return 'expired';
  if (k.status === 'revoked') return 'revoked';
  if (k.expires_at && Date.parse(k.expires_at) - now < EXPIRING_SOON_MS) return 'expiring soon';
  return 'active';
}

export const EXPIRY_CHOICES = [
  { value: 'never', label: 'Never' },
  { value: '7', label: '7 days' },
  { value: '30', label: '30 days' },
  { value: '60', label: '60 days' },
  { value: '90', label: '90 days' },
  { value: 'date', label: 'On a date…' },
] as const;

/** The form's expiration choice as an ISO date-time, or null for "never". Throws a message for bad input. */
export function expiryFromForm(choice: string, date: string, now = Date.now()): string | null {
  if (!choice || choice === 'never') return null;
  if (choice === 'date') {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new Error('Choose the date the key should expire on');
    const t = Date.parse(`${date}T23:59:59Z`);
    if (!Number.isFinite(t) || t <= now) throw new Error('The expiry date must be in the future');
    return new Date(t).toISOString();
  }
  const days = Number(choice);
  if (![7, 30, 60, 90].includes(days)) throw new Error('Choose an expiration from the list');
  return new Date(now + days * 86400_000).toISOString();
}

export const GRACE_CHOICES = [
  { value: 0, label: 'Now: the old secret stops working immediately' },
  { value: 3600, label: '1 hour' },
  { value: 86400, label: '24 hours' },
  { value: 7 * 86400, label: '7 days' },
] as const;

export const PRESET_LABELS: Record<string, { label: string; hint: string }> = {
  read_only: { label: 'Read only', hint: 'View workflows, runs and connections; change nothing.' },
  read_write: { label: 'Read & write', hint: 'Also create, change and run workflows and manage connections.' },
  full_access: { label: 'Full access', hint: 'Everything, including managing API keys and webhooks.' },
};
