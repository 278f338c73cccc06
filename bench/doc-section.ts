// Writes one generated section of a results page between its markers, keeping the hand-written text around it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export function writeSection(file: string, name: string, body: string): void {
  const begin = `<!-- BEGIN ${name}: generated, do not edit by hand -->`;
  const end = `<!-- END ${name} -->`;
  const block = `${begin}\n${body.trimEnd()}\n${end}`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const i = text.indexOf(begin);
  const j = i >= 0 ? text.indexOf(end, i) : -1;
  const next =
    i >= 0 && j >= 0
      ? text.slice(0, i) + block + text.slice(j + end.length)
      : text + (text && !text.endsWith('\n\n') ? (text.endsWith('\n') ? '\n' : '\n\n') : '') + block + '\n';
  writeFileSync(file, next);
}
