/**
 * Checks of one HTTP request before the server acts on it: whose page sent it (Origin, else Referer or
 * Sec-Fetch-Site), how big its body is and how deeply its JSON nests. Pure functions over headers and text.
 */

/** Headers the checks read, as node:http delivers them (lower-case names). */
export type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

/**
 * Why a state-changing request (or a WebSocket upgrade) must be refused as coming from another page, or null
 * when it may proceed. Browsers do not separate cookies by port, so a page of any other program on 127.0.0.1
 * carries the studio cookie: the token alone does not tell the studio's page from it. A request with none of
 * these headers comes from a program, not a page (curl, the CLI), and is judged by its token alone.
 */
export function foreignOrigin(headers: Headers, own: readonly string[]): string | null {
  const origin = header(headers, 'origin');
  if (origin !== undefined) {
    return own.includes(origin)
      ? null
      : `requests from ${origin} are not accepted (only from the studio's page)`;
  }
  const site = header(headers, 'sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return `${site} requests are not accepted (only from the studio's page)`;
  }
  const referer = header(headers, 'referer');
  if (referer !== undefined) {
    const from = originOf(referer);
    if (from === null || !own.includes(from)) {
      return `requests from ${from ?? 'an unreadable referrer'} are not accepted (only from the studio's page)`;
    }
  }
  return null;
}

/**
 * The deepest nesting of arrays and objects in a JSON text (strings skipped), counted without parsing, so a
 * body of 200,000 brackets is refused before anything recurses over it.
 */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** Decodes a URL path; null when its percent-encoding is malformed (`/%E0%A4%A`). */
export function decodePath(pathname: string): string | null {
  try {
    return decodeURIComponent(pathname);
  } catch {
    return null;
  }
}
