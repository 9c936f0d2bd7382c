/**
 * The run folder (`runs/<id>/`) as the rest of the engine reads it: checkpoints, the adapter of a checkpoint
 * back in memory, the event logs, and the lock a trainer holds. Training writes runs through these too.
 */
export { activateRunBackend, loadRunAdapter, locateCheckpoint, type RunAdapter } from './adapter.ts';
export {
  ADAPTER_FILE,
  CHECKPOINTS_DIR,
  type CheckpointContents,
  type CheckpointState,
  checkFinite,
  checkpointDir,
  listCheckpoints,
  loadCheckpoint,
  OPTIMIZER_FILE,
  readCheckpointState,
  readTensors,
  STATE_FILE,
  saveCheckpoint,
} from './checkpoint.ts';
export {
  checkProjectFree,
  isAlive,
  LOCK_FILE,
  lockHolder,
  lockPid,
  lockRun,
  RunLockError,
} from './lock.ts';
export { readRunEvents, truncateRunLogs } from './logs.ts';
export { recoverRun } from './recover.ts';
export { RESERVE_FILE, releaseSpace, reserveSpace } from './space.ts';
