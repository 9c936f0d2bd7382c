import { DataError } from './errors.ts';

/** Byte offset of the first byte that does not start or continue a valid UTF-8 sequence; -1 if all are valid. */
function firstInvalidByte(bytes: Uint8Array): number {
  const cont = (i: number, lo = 0x80, hi = 0xbf) => i < bytes.length && bytes[i] >= lo && bytes[i] <= hi;
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i += 1;
    } else if (b >= 0xc2 && b <= 0xdf) {
      if (!cont(i + 1)) return i;
      i += 2;
    } else if (b >= 0xe0 && b <= 0xef) {
      // no overlong forms (E0 A0..), no UTF-16 surrogates (ED ..9F)
      const ok = b === 0xe0 ? cont(i + 1, 0xa0) : b === 0xed ? cont(i + 1, 0x80, 0x9f) : cont(i + 1);
      if (!ok || !cont(i + 2)) return i;
      i += 3;
    } else if (b >= 0xf0 && b <= 0xf4) {
      // no overlong forms (F0 90..), nothing past U+10FFFF (F4 ..8F)
      const ok = b === 0xf0 ? cont(i + 1, 0x90) : b === 0xf4 ? cont(i + 1, 0x80, 0x8f) : cont(i + 1);
      if (!ok || !cont(i + 2) || !cont(i + 3)) return i;
      i += 4;
    } else {
      return i;
    }
  }
  return -1;
}

/**
 * The text of a dataset file. Only UTF-8 is read: invalid bytes are an error naming the line (they would
 * otherwise become U+FFFD and train on garbage). A byte-order mark at the start, which many editors write,
 * is dropped.
 */
export function decodeDataset(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidByte(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    throw new DataError(
      `invalid UTF-8 (byte 0x${bytes[at].toString(16).padStart(2, '0')} at offset ${at}); save the file as UTF-8`,
      file,
      line,
    );
  }
}
