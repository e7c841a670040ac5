/**
 * Output paths templated from a slot's time (UTC), e.g. `out/{date}` → `out/2026-11-24`.
 *   {date} 2026-11-24   {time} 0200   {datetime} 2026-11-24T0200Z   {year} {month} {day} {hour} {minute}
 * Workflow-safe: pure string work on a given Date.
 */
export function resolveOutputTemplate(template: string, at: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const parts: Record<string, string> = {
    year: String(at.getUTCFullYear()),
    month: pad(at.getUTCMonth() + 1),
    day: pad(at.getUTCDate()),
    hour: pad(at.getUTCHours()),
    minute: pad(at.getUTCMinutes()),
  };
  parts.date = `${parts.year}-${parts.month}-${parts.day}`;
  parts.time = `${parts.hour}${parts.minute}`;
  parts.datetime = `${parts.date}T${parts.time}Z`;
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => parts[name] ?? whole);
}

/** The placeholders a template may use, for help texts and validation. */
export const OUTPUT_TEMPLATE_FIELDS = ['date', 'time', 'datetime', 'year', 'month', 'day', 'hour', 'minute'];
