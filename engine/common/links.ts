/**
 * The external links the studio shows. The desktop app opens a link in the system browser only when it is
 * listed here (electron/policy.ts), so a view that shows a link takes it from this list. None is shown today.
 */
export const externalLinks: readonly string[] = [];
