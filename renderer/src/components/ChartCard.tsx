import { type ReactNode, useEffect, useState } from 'react';
import { Card } from './common.tsx';

/**
 * A card holding one chart, with a full-width detail view of it: the same chart drawn large (all labels,
 * taller), over the page until closed (Close, Escape or a click outside).
 */
export function ChartCard({
  title,
  testId,
  children,
}: {
  title: string;
  testId?: string;
  children: (detail: boolean) => ReactNode;
}) {
  const [open, setOpen] = useState(false);
  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') setOpen(false);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [open]);
  return (
    <Card
      testId={testId}
      className="chart-card"
      actions={
        <button
          type="button"
          className="link small"
          onClick={() => setOpen(true)}
          aria-label={`${title}: full width`}
        >
          ⤢ full width
        </button>
      }
    >
      {children(false)}
      {open && (
        // biome-ignore lint/a11y/useKeyWithClickEvents: Escape closes it (window listener above)
        // biome-ignore lint/a11y/noStaticElementInteractions: the backdrop only closes the dialog
        <div className="detail-backdrop" onClick={() => setOpen(false)}>
          {/* biome-ignore lint/a11y/useKeyWithClickEvents: a click inside must not reach the backdrop */}
          <div
            className="detail"
            role="dialog"
            aria-modal="true"
            aria-label={title}
            data-testid="chart-detail"
            onClick={(e) => e.stopPropagation()}
          >
            <header className="card-head">
              <h2>{title}</h2>
              <button type="button" onClick={() => setOpen(false)} data-testid="detail-close">
                Close
              </button>
            </header>
            {children(true)}
          </div>
        </div>
      )}
    </Card>
  );
}
