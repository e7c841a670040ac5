/**
 * Azure ML's `append_row` output shape, one line per input: a row the script returned as a string is the
 * line as it is (Azure ML writes `str(row)`); a DataFrame row, a dict or a list becomes its values as CSV
 * fields (RFC 4180 quoting); anything else its JSON text. No header, no index: like Azure ML's, the line
 * holds what run() returned (put the file name in your rows if you need it), in input order.
 */
export function appendRowLine(row: unknown): string {
  if (typeof row === 'string') return row.replace(/\r?\n/g, ' ');
  if (Array.isArray(row)) return row.map(csvField).join(',');
  if (row !== null && typeof row === 'object') return Object.values(row).map(csvField).join(',');
  return JSON.stringify(row) ?? '';
}

function csvField(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
