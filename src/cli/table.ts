// Text tables for the terminal (status, aux list, containers): one layout, cells escaped by the caller.
/** Columns padded to their widest cell, two spaces apart; cells are already escaped for the terminal. */
export function textTable(cells: readonly (readonly string[])[]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells
    .map((row) =>
      row
        .map((v, i) => v.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
