import { type RefObject, useEffect, useRef, useState } from 'react';
import { formatNumber } from '../lib/format.ts';

/** Viridis-like ramp from 5 stops: readable in both themes and for colour-blind users. */
const stops = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

export function rampColor(t: number): string {
  const x = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export function valueRange(matrix: (number | null)[][]): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const row of matrix)
    for (const v of row) {
      if (v === null || !Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  if (lo === Number.POSITIVE_INFINITY) return [0, 1];
  return lo === hi ? [lo, lo + 1] : [lo, hi];
}

/** The width of an element in CSS pixels, following resizes: charts draw at their real size, text stays legible. */
export function useWidth<T extends HTMLElement>(fallback: number): [RefObject<T | null>, number] {
  const ref = useRef<T>(null);
  const [width, setWidth] = useState(fallback);
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const observer = new ResizeObserver(([entry]) =>
      setWidth(Math.max(200, Math.floor(entry.contentRect.width))),
    );
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

const FONT = 12;

/**
 * A rows × columns heatmap in SVG (recharts has none), drawn at its real pixel width: labelled axes, a colour
 * scale with the metric's unit, and the value under the pointer read out above the map.
 */
export function Heatmap({
  title,
  rowLabels,
  colLabels,
  matrix,
  rowAxis = 'row',
  colAxis = 'column',
  unit,
  testId,
  cellHeight = 18,
  allColumnLabels = false,
}: {
  title: string;
  rowLabels: string[];
  colLabels: string[];
  matrix: (number | null)[][];
  rowAxis?: string;
  colAxis?: string;
  /** What the colour measures. */
  unit?: string;
  testId?: string;
  cellHeight?: number;
  /** A label under every column (the detail view), not only a few. */
  allColumnLabels?: boolean;
}) {
  const [ref, width] = useWidth<HTMLElement>(640);
  const [hover, setHover] = useState<{ r: number; c: number } | null>(null);
  const [lo, hi] = valueRange(matrix);
  const longest = Math.max(3, ...rowLabels.map((l) => Math.min(26, l.length)));
  const labelWidth = 24 + Math.ceil(longest * FONT * 0.62);
  const cols = Math.max(1, ...matrix.map((r) => r.length));
  const cellWidth = Math.max(2, (width - labelWidth - 8) / cols);
  const mapHeight = rowLabels.length * cellHeight;
  const height = mapHeight + FONT * 3.4;
  const perLabel = FONT * 0.62 * Math.max(2, ...colLabels.map((l) => l.length)) + 10;
  const tickEvery = allColumnLabels ? 1 : Math.max(1, Math.ceil(perLabel / cellWidth));
  const value = hover ? matrix[hover.r]?.[hover.c] : undefined;
  return (
    <figure className="heatmap" data-testid={testId} ref={ref}>
      <figcaption>
        <span className="heatmap-title">{title}</span>
        <span className="legend-ramp" data-testid="colour-scale">
          <span className="mono">{formatNumber(lo, 3)}</span>
          <span className="ramp" aria-hidden />
          <span className="mono">{formatNumber(hi, 3)}</span>
          {unit && <span className="legend-unit">{unit}</span>}
        </span>
      </figcaption>
      <div className="heatmap-readout mono small" data-testid="heatmap-readout" aria-live="polite">
        {hover
          ? `${rowAxis} ${rowLabels[hover.r]} · ${colAxis} ${colLabels[hover.c] ?? hover.c}: ${formatNumber(value ?? null)}`
          : `hover a cell: ${rowAxis} · ${colAxis} · value`}
      </div>
      <svg
        width={width}
        height={height}
        role="img"
        aria-label={`${title}: ${rowAxis} by ${colAxis}`}
        onMouseMove={(e) => {
          const box = e.currentTarget.getBoundingClientRect();
          const c = Math.floor((e.clientX - box.left - labelWidth) / cellWidth);
          const r = Math.floor((e.clientY - box.top) / cellHeight);
          const inside = r >= 0 && r < rowLabels.length && c >= 0 && c < cols;
          setHover(inside ? { r, c } : null);
        }}
        onMouseLeave={() => setHover(null)}
      >
        <text
          x={FONT * 0.8}
          y={mapHeight / 2}
          className="hm-axis"
          textAnchor="middle"
          transform={`rotate(-90 ${FONT * 0.8} ${mapHeight / 2})`}
        >
          {rowAxis}
        </text>
        {rowLabels.map((label, r) => (
          <text
            // biome-ignore lint/suspicious/noArrayIndexKey: rows are positional
            key={r}
            x={labelWidth - 6}
            y={r * cellHeight + cellHeight / 2 + FONT * 0.36}
            className="hm-label"
            textAnchor="end"
          >
            {label.length > 26 ? `…${label.slice(-25)}` : label}
          </text>
        ))}
        {matrix.map((row, r) =>
          row.map((v, c) => (
            <rect
              // biome-ignore lint/suspicious/noArrayIndexKey: cells are positional
              key={`${r}-${c}`}
              x={labelWidth + c * cellWidth}
              y={r * cellHeight}
              width={Math.max(1, cellWidth - 1)}
              height={cellHeight - 1}
              fill={v !== null && Number.isFinite(v) ? rampColor((v - lo) / (hi - lo)) : 'var(--grid)'}
              className={hover?.r === r && hover.c === c ? 'hm-cell on' : 'hm-cell'}
              data-value={v ?? ''}
            >
              <title>{`${rowLabels[r]} @ ${colLabels[c] ?? c}: ${formatNumber(v)}`}</title>
            </rect>
          )),
        )}
        {colLabels.map((label, c) =>
          c % tickEvery === 0 || c === colLabels.length - 1 ? (
            <text
              // biome-ignore lint/suspicious/noArrayIndexKey: columns are positional
              key={c}
              x={labelWidth + c * cellWidth + cellWidth / 2}
              y={mapHeight + FONT * 1.3}
              className="hm-label"
              textAnchor="middle"
            >
              {label}
            </text>
          ) : null,
        )}
        <text
          x={labelWidth + (width - labelWidth) / 2}
          y={mapHeight + FONT * 2.9}
          className="hm-axis"
          textAnchor="middle"
        >
          {colAxis}
        </text>
      </svg>
    </figure>
  );
}
