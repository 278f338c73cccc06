// A number <-> name table with libaudit's lookup rules: names match in any case, a number prints its first name.

export class NameTable {
  private readonly byName = new Map<string, number>();
  private readonly byNum = new Map<number, string>();
  constructor(entries: ReadonlyArray<readonly [number, string]>) {
    for (const [n, s] of entries) {
      const k = s.toLowerCase();
      if (!this.byName.has(k)) this.byName.set(k, n);
      if (!this.byNum.has(n)) this.byNum.set(n, s);
    }
  }
  num(name: string): number | undefined {
    return this.byName.get(name.toLowerCase());
  }
  name(n: number): string | undefined {
    return this.byNum.get(n);
  }
}
