/**
 * Written into every export folder. An export replaces a folder only when it carries this marker (an earlier
 * export), so a model folder, a run or anyone's files are never deleted by choosing them as `out`; a native
 * export that is trained on (`studio resume`) loses it, since it then holds training of its own.
 */
export const EXPORT_MARKER = '.studio-export.json';
