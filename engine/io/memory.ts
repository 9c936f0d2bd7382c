import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';

/**
 * Memory a new allocation can get now: Linux's MemAvailable (free plus reclaimable page cache), capped by the
 * cgroup limit a container sets; elsewhere the OS's free memory.
 */
export function availableMemoryBytes(): number {
  let available = freemem();
  try {
    const match = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (match) available = Number(match[1]) * 1024;
  } catch {
    // not Linux: freemem() it is
  }
  try {
    const max = readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    const used = Number(readFileSync('/sys/fs/cgroup/memory.current', 'utf8').trim());
    if (max !== 'max' && Number.isFinite(used)) available = Math.min(available, Number(max) - used);
  } catch {
    // no cgroup v2 limit
  }
  return available;
}
