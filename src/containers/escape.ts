// Untrusted strings in audit records, encoded as the kernel's audit_log_untrustedstring() does.

/**
 * A value a container or its runtime chose (name, image, annotation) written into a record: quoted when it holds only
 * printable ASCII without spaces or quotes, else upper-case hex of its UTF-8 bytes, which ausearch -i decodes for the
 * fields it knows (name, ...). No choice of value can add a field, end the record or start a new line.
 */
export function encodeUntrusted(s: string): string {
  const b = Buffer.from(s, 'utf8');
  for (const c of b) if (c <= 0x20 || c === 0x22 || c >= 0x7f) return b.toString('hex').toUpperCase();
  return `"${s}"`;
}
