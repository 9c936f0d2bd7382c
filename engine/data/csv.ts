import { DataError } from './errors.ts';

export interface CsvRecord {
  /** 1-based line where the record starts (a quoted field may span lines). */
  line: number;
  fields: string[];
}

/**
 * RFC 4180 parsing: fields may be quoted, quotes inside quoted fields are doubled, and quoted fields may hold
 * the delimiter or newlines. TSV (GLUE's layout) uses the same rules with a tab delimiter.
 */
export function parseDelimited(text: string, delimiter: string, file: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let field = '';
    let atFieldStart = true;
    let endOfRecord = false;
    while (!endOfRecord) {
      if (i >= n) {
        fields.push(field);
        break;
      }
      const c = text[i];
      if (atFieldStart && c === '"') {
        i++;
        let closed = false;
        while (i < n) {
          const q = text[i];
          if (q === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (q === '\n') line++;
          field += q;
          i++;
        }
        if (!closed) throw new DataError('unterminated quoted field', file, start);
        atFieldStart = false;
        const next = text[i];
        if (i < n && next !== delimiter && next !== '\n' && next !== '\r') {
          throw new DataError(
            `unexpected character ${JSON.stringify(next)} after a closing quote`,
            file,
            line,
          );
        }
        continue;
      }
      if (c === delimiter) {
        fields.push(field);
        field = '';
        atFieldStart = true;
        i++;
        continue;
      }
      if (c === '\r' || c === '\n') {
        fields.push(field);
        if (c === '\r' && text[i + 1] === '\n') i++;
        i++;
        line++;
        endOfRecord = true;
        continue;
      }
      field += c;
      atFieldStart = false;
      i++;
    }
    if (!(fields.length === 1 && fields[0] === '')) records.push({ line: start, fields });
  }
  return records;
}
