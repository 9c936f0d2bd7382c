/**
 * Where a feature adds its own pieces to a view without editing the view: its component file, then one
 * line in the list below. Each slot says what its components receive.
 */
import type { ComponentType } from 'react';
import type { RunInfo } from '../../engine/common/contract.ts';
import { GgufExportCard } from './components/GgufExportCard.tsx';
import { ImportRun } from './components/ImportRun.tsx';
import { ResizePanel } from './components/ResizePanel.tsx';
import { RunElsewhere } from './components/RunElsewhere.tsx';

/** Cards above the Runs view's table, for the open project (runs that leave the studio or come into it). */
export const runsViewCards: ComponentType[] = [RunElsewhere, ImportRun];

/** Cards under the Export view's formats, for the run being exported (another export target). */
export const exportCards: ComponentType<{ run: RunInfo }>[] = [GgufExportCard, ResizePanel];
