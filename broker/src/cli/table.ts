/** Human-readable output helpers for `lnc` (pure). */

export type Cell = string | number | boolean | null | undefined;

/** A left-aligned text table; numbers are right-aligned. */
export function renderTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = (c: Cell): string => (c === null || c === undefined ? '-' : String(c));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => text(r[i]).length)));
  // a column whose cells are all numbers is right-aligned, header included
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] == null));
  const line = (cells: readonly Cell[], isHeader: boolean): string =>
    cells
      .map((c, i) => {
        const s = isHeader ? String(c) : text(c);
        const w = widths[i] ?? s.length;
        return numeric[i] ? s.padStart(w) : s.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [line(headers, true), ...rows.map((r) => line(r, false))].join('\n');
}

/** `key: value` lines with aligned values. */
export function renderKeyValues(pairs: readonly (readonly [string, Cell])[]): string {
  const w = Math.max(0, ...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${(k + ':').padEnd(w + 1)} ${v === null || v === undefined ? '-' : String(v)}`).join('\n');
}
