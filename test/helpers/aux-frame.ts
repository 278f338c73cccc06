// One frame of the host/aux protocol as the misbehaving aux process doubles write it (u32 length, u8 kind, body).
export function frame(kind: number, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const f = Buffer.alloc(5 + b.length);
  f.writeUInt32LE(1 + b.length, 0);
  f[4] = kind;
  b.copy(f, 5);
  return f;
}
