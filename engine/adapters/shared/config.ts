/** A finite number field of a recorded config, else undefined (configs written before a field existed lack it). */
export function configNumber(config: Record<string, unknown>, key: string): number | undefined {
  const v = config[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
