/**
 * Where a feature adds its own pieces to a view without editing the view: its component file, then one
 * line in the list below. Each slot says what its components receive.
 */
import type { ComponentType } from 'react';
import type { RunInfo } from '../../engine/common/contract.ts';
import { GgufExportCard } from './components/GgufExportCard.tsx';
import { ResizePanel } from './components/ResizePanel.tsx';

/** Buttons in the Runs view's header, beside Refresh and Compare (importing an adapter or a run). */
export const runsViewActions: ComponentType[] = [];

/** Buttons for one run: in its row of the Runs table and on the Train view's run card (running it elsewhere). */
export const runActions: ComponentType<{ run: RunInfo }>[] = [];

/** Cards under the Export view's formats, for the run being exported (another export target). */
export const exportCards: ComponentType<{ run: RunInfo }>[] = [GgufExportCard, ResizePanel];
